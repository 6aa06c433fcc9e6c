"""The one configuration object, read from MOVIEAUGUR_* environment variables.

Every adapter, service and job takes its settings from here, so a deployment is described by
its environment alone (12-factor) and the README can document each variable in one table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ACTION_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 0.5,
    "like": 3.0,
    "dislike": -3.0,
    "watchlist": 2.0,
    "rating": 1.0,
}


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("movieaugur"))


class Settings(BaseSettings):
    """All knobs of MovieAugur. Field `x` is set by the variable `MOVIEAUGUR_X`."""

    model_config = SettingsConfigDict(env_prefix="MOVIEAUGUR_", extra="ignore", frozen=True)

    mode: Literal["embedded", "distributed"] = "embedded"
    data_dir: Path = Field(default_factory=_default_data_dir)

    # Domain data: item types and how much each action counts.
    item_types: Annotated[tuple[str, ...], NoDecode] = ("movie", "series")
    action_weights: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_ACTION_WEIGHTS)
    )
    rating_center: float = 3.0
    # Accepted rating values; a rating outside counts nothing (also for events already in the log).
    rating_min: float = 0.5
    rating_max: float = 5.0
    clock_skew_seconds: int = 300

    # HTTP.
    host: str = "127.0.0.1"
    port: int = 8080
    command_port: int = 18181
    query_port: int = 18182
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    # Keys that may read (GET) when set; write keys may read too. Unset: reads are open.
    read_api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    # Older clients that cannot send headers may post `POST /events` without a key.
    legacy_writes_without_key: bool = False
    max_batch: int = Field(20_000, ge=1, le=1_000_000)
    # Bytes one element of a write batch may take on average: with max_batch it bounds a body.
    max_event_bytes: int = Field(1024, ge=256, le=1_048_576)
    # How many events per log partition a view remembers applied event ids for (duplicates
    # further apart than this are counted again), and for how long the Kafka log remembers ids
    # to refuse appending a retried event again.
    dedupe_horizon_events: int = Field(1_000_000, ge=1000)
    dedupe_horizon_seconds: int = Field(7 * 86_400, ge=60)

    # Popularity.
    popularity_half_life_days: float = 7.0
    default_window: str = "all"

    # Recommendations.
    default_model: str = "default"
    recommendations_per_user: int = 100

    # Distributed mode.
    topic_prefix: str = "movieaugur."
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_partitions: int = 3
    kafka_write_timeout_seconds: float = 5.0
    redis_url: str = "redis://127.0.0.1:16379/0"
    mongo_url: str = "mongodb://127.0.0.1:27018/?directConnection=true"
    mongo_database: str = "movieaugur"
    connect_url: str = "http://127.0.0.1:18083"
    # Projector-written views to keep in MongoDB instead of Redis (e.g. "matrix"); FerretDB's
    # SQLite backend takes a few ms per update, so the default keeps them all in Redis.
    document_projections: Annotated[tuple[str, ...], NoDecode] = ()

    # Offline.
    train_time_budget_seconds: float = 120.0
    tmdb_api_key: str = ""
    tmdb_bearer_token: str = ""
    tmdb_base_url: str = "https://api.themoviedb.org"
    tmdb_language: str = "en-US"
    tmdb_max_pages: int = 5
    tmdb_requests_per_10s: float = 40.0

    @field_validator("item_types", "api_keys", "read_api_keys", "document_projections", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    @field_validator("action_weights", mode="before")
    @classmethod
    def _parse_weights(cls, value: Any) -> Any:
        """Accept JSON (`{"like": 3}`) or `like=3,dislike=-3`; merged over the defaults."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                parsed = json.loads(text)
            else:
                parsed = {}
                for part in filter(None, (p.strip() for p in text.split(","))):
                    name, _, number = part.partition("=")
                    parsed[name.strip()] = float(number)
            return {**DEFAULT_ACTION_WEIGHTS, **parsed}
        return value

    @property
    def max_body_bytes(self) -> int:
        """The largest write body a valid batch can need; anything larger is refused unread."""
        return self.max_batch * self.max_event_bytes + 4096

    @property
    def log_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def views_path(self) -> Path:
        return self.data_dir / "views.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def topic(self, stream: str) -> str:
        return f"{self.topic_prefix}{stream}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
