"""Exceptions of the TMDB client, split by what a caller should do about them."""

from __future__ import annotations


class TmdbError(Exception):
    """Base class of everything this package raises about TMDB."""


class TmdbHttpError(TmdbError):
    """A non-2xx answer. Carries TMDB's own ``status_code``/``status_message`` when it sent them."""

    def __init__(self, status: int, path: str, tmdb_code: int | None = None, message: str = "") -> None:
        self.status = status
        self.path = path
        self.tmdb_code = tmdb_code
        self.message = message
        detail = f" (TMDB status_code {tmdb_code}: {message})" if tmdb_code is not None or message else ""
        super().__init__(f"HTTP {status} for {path}{detail}")


class TmdbAuthError(TmdbHttpError):
    """401/403: the credential is wrong. Never retried: retrying cannot fix a bad key."""


class TmdbNotFound(TmdbHttpError):
    """404: the title was removed or never existed; callers skip it."""


class TmdbRateLimited(TmdbHttpError):
    """429: retried after ``retry_after`` seconds (from the Retry-After header) if known."""

    def __init__(self, status: int, path: str, tmdb_code: int | None = None, message: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(status, path, tmdb_code, message)
        self.retry_after = retry_after


class TmdbServerError(TmdbHttpError):
    """5xx: transient on TMDB's side, retried with backoff."""


class TmdbResponseError(TmdbError):
    """A 2xx whose body is not the JSON shape TMDB documents (not per-item: whole response)."""
