"""Async TMDB v3 HTTP client: auth, timeouts, retries, rate limit. No Airflow imports.

Why each safeguard: TMDB is a shared public API that throttles with 429 + Retry-After, has
occasional 5xx and slow answers, and a nightly DAG must neither hammer it nor die on one
hiccup. So every request goes through a client-side rate limiter (aiolimiter), a
per-request timeout, and tenacity retries (exponential backoff with jitter) for 5xx,
timeouts and connection errors; a 429 waits what the server asked before retrying.
4xx other than 429 are never retried: a bad key or a missing title does not heal.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential, wait_random
from tenacity.wait import wait_base

from kernel.http import parse_retry_after
from offline.ingest.tmdb.config import TMDB_KINDS, TmdbConfig
from offline.ingest.tmdb.errors import (
    TmdbAuthError,
    TmdbHttpError,
    TmdbNotFound,
    TmdbRateLimited,
    TmdbResponseError,
    TmdbServerError,
)
from offline.ingest.tmdb.models import GenreList

log = logging.getLogger(__name__)

#: TMDB serves at most this many pages of any list, whatever total_pages says.
TMDB_MAX_PAGES = 500


def is_retryable(exc: BaseException) -> bool:
    """5xx, 429, timeouts and connection-level failures are transient; nothing else is."""
    return isinstance(
        exc,
        (TmdbServerError, TmdbRateLimited, asyncio.TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError),
    )


class _RetryAfterOrBackoff(wait_base):
    """Wait what a 429's Retry-After asked (capped), otherwise exponential backoff with jitter."""

    def __init__(self, config: TmdbConfig) -> None:
        # initial * 2**(n-1) capped at backoff_max, plus up to backoff_jitter of random spread
        # so many clients throttled together do not retry in lockstep.
        self._backoff = wait_exponential(multiplier=config.backoff_initial, max=config.backoff_max) + wait_random(
            0, config.backoff_jitter
        )
        self._cap = config.max_retry_after

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TmdbRateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self._cap)
        return float(self._backoff(retry_state))


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    path = retry_state.kwargs.get("path", "?")
    log.warning("TMDB GET %s failed (attempt %d: %s); retrying in %.2fs",
                path, retry_state.attempt_number, exc.__class__.__name__ + (f": {exc}" if str(exc) else ""), wait)


class TmdbClient:
    """One HTTP session + limiter + retry policy. Use as ``async with TmdbClient(cfg) as c:``.

    ``requests_sent`` and ``retries`` count attempts, for progress reports and tests.
    """

    def __init__(self, config: TmdbConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        self._limiter = AsyncLimiter(config.rate_limit, config.rate_period)
        self._base = config.base_url.rstrip("/")
        self.requests_sent = 0
        self.retries = 0

    async def __aenter__(self) -> TmdbClient:
        if self._session is None:
            headers = {"Accept": "application/json", "User-Agent": "MovieAugur-offline/0.1"}
            if self.config.bearer_token:
                headers["Authorization"] = f"Bearer {self.config.bearer_token}"
            self._session = aiohttp.ClientSession(headers=headers)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    # -- low level -------------------------------------------------------------------------

    async def get_json(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        """GET ``/3/...`` with auth, rate limit, timeout and retries; returns decoded JSON."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_retries + 1),
            wait=_RetryAfterOrBackoff(self.config),
            retry=retry_if_exception(is_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return await retrying(self._get_once, path=path, params=params or {})

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.retries += 1
        _log_retry(retry_state)

    async def _get_once(self, *, path: str, params: dict[str, str | int]) -> Any:
        if self._session is None:
            raise RuntimeError("TmdbClient used outside 'async with'")
        query: dict[str, str] = {k: str(v) for k, v in params.items()}
        if self.config.language:
            query.setdefault("language", self.config.language)
        if not self.config.bearer_token and self.config.api_key:
            query["api_key"] = self.config.api_key
        async with self._limiter:
            self.requests_sent += 1
            timeout = aiohttp.ClientTimeout(total=self.config.timeout)
            async with self._session.get(self._base + path, params=query, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise self._http_error(resp.status, path, body, resp.headers.get("Retry-After"))
        try:
            return orjson.loads(body)
        except ValueError as exc:
            raise TmdbResponseError(f"invalid JSON from {path}: {exc}") from exc

    @staticmethod
    def _http_error(status: int, path: str, body: bytes, retry_after: str | None) -> TmdbHttpError:
        code: int | None = None
        message = ""
        try:
            payload = orjson.loads(body)
            if isinstance(payload, dict):
                code = payload.get("status_code") if isinstance(payload.get("status_code"), int) else None
                message = str(payload.get("status_message", ""))
        except ValueError:
            message = body[:200].decode("utf-8", "replace")
        if status in (401, 403):
            return TmdbAuthError(status, path, code, message)
        if status == 404:
            return TmdbNotFound(status, path, code, message)
        if status == 429:
            return TmdbRateLimited(status, path, code, message, retry_after=parse_retry_after(retry_after))
        if status >= 500:
            return TmdbServerError(status, path, code, message)
        return TmdbHttpError(status, path, code, message)

    # -- endpoints -------------------------------------------------------------------------

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in TMDB_KINDS:
            raise ValueError(f"unknown TMDB kind {kind!r}; known: {TMDB_KINDS}")

    async def popular_page(self, kind: str, page: int = 1) -> dict[str, Any]:
        """Raw JSON of ``/3/{kind}/popular?page=N``."""
        self._check_kind(kind)
        data = await self.get_json(f"/3/{kind}/popular", {"page": page})
        if not isinstance(data, dict):
            raise TmdbResponseError(f"/3/{kind}/popular page {page}: expected an object, got {type(data).__name__}")
        return data

    async def details(self, kind: str, tmdb_id: int | str) -> Any:
        """Raw JSON of ``/3/{kind}/{id}?append_to_response=keywords,credits`` (one call, not three)."""
        self._check_kind(kind)
        return await self.get_json(f"/3/{kind}/{tmdb_id}", {"append_to_response": "keywords,credits"})

    async def genres(self, kind: str) -> dict[int, str]:
        """``/3/genre/{kind}/list`` as {genre id: name}, to name ``genre_ids`` of list items."""
        self._check_kind(kind)
        data = await self.get_json(f"/3/genre/{kind}/list")
        try:
            return {g.id: g.name for g in GenreList.model_validate(data).genres}
        except ValueError as exc:
            raise TmdbResponseError(f"/3/genre/{kind}/list: {exc}") from exc
