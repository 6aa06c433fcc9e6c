"""Configuration of the TMDB client, kept apart so DAGs and tests can build it without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from domain.configuration import item_types_of

if TYPE_CHECKING:
    from kernel.settings import Settings

#: TMDB's own kinds of title. Our item types are data, so the names we store are configurable.
TMDB_KINDS: tuple[str, ...] = ("movie", "tv")
DEFAULT_ITEM_TYPES: Mapping[str, str] = MappingProxyType({"movie": "movie", "tv": "series"})


@dataclass(frozen=True)
class TmdbConfig:
    """Everything the client needs; defaults are safe for the public TMDB API.

    Auth: when ``bearer_token`` (TMDB's "API Read Access Token") is set it is sent as
    ``Authorization: Bearer``; otherwise ``api_key`` goes in the query string. One of the two
    is required. ``rate_limit`` requests per ``rate_period`` seconds stay under TMDB's
    documented soft limit (~50 req/s per IP) with a wide margin so several DAG tasks can share it.
    ``max_retries`` counts retries after the first attempt (0 means one attempt only).
    """

    api_key: str | None = None
    bearer_token: str | None = None
    base_url: str = "https://api.themoviedb.org"
    timeout: float = 10.0
    max_retries: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    max_retry_after: float = 120.0
    rate_limit: float = 40.0
    rate_period: float = 10.0
    concurrency: int = 8
    language: str = "en-US"
    item_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ITEM_TYPES))

    def __post_init__(self) -> None:
        if not (self.api_key or self.bearer_token):
            raise ValueError("TmdbConfig needs api_key or bearer_token")
        if self.timeout <= 0 or self.concurrency < 1 or self.max_retries < 0:
            raise ValueError("timeout must be > 0, concurrency >= 1, max_retries >= 0")
        if self.rate_limit <= 0 or self.rate_period <= 0:
            raise ValueError("rate_limit and rate_period must be > 0")
        unknown = set(self.item_types) - set(TMDB_KINDS)
        if unknown:
            raise ValueError(f"item_types maps unknown TMDB kinds {sorted(unknown)}; known: {TMDB_KINDS}")

    @property
    def auth_style(self) -> str:
        """``"bearer"`` or ``"api_key"``: which credential the client will send."""
        return "bearer" if self.bearer_token else "api_key"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TmdbConfig:
        """Build from the one configuration object (MOVIEAUGUR_TMDB_*): secrets come from the
        environment (an Airflow connection or a secret mount in production), never from code.
        Item types follow the registry: every registered type with a TMDB kind is collected."""
        kwargs: dict[str, Any] = {
            "api_key": settings.tmdb_api_key or None,
            "bearer_token": settings.tmdb_bearer_token or None,
            "base_url": settings.tmdb_base_url,
            "language": settings.tmdb_language,
            "rate_limit": settings.tmdb_requests_per_10s,
            "rate_period": 10.0,
            "item_types": {t.tmdb_kind: t.name for t in item_types_of(settings) if t.tmdb_kind},
        }
        kwargs.update(overrides)
        return cls(**kwargs)
