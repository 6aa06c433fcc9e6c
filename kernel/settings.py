"""The one configuration object, read from MOVIEAUGUR_* environment variables.

Every adapter, service and job takes its settings from here, so a deployment is described by
its environment alone (12-factor) and the README can document each variable in one table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kernel.experiments import Experiment, parse_experiments

DEFAULT_ACTION_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 0.5,
    "like": 3.0,
    "dislike": -3.0,
    "watchlist": 2.0,
    "rating": 1.0,
}


_LIST_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ListEffect = Literal["exclude", "boost", "none"]
_EXCLUDE: ListEffect = "exclude"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("movieaugur"))


class Settings(BaseSettings):
    """All knobs of MovieAugur. Field `x` is set by the variable `MOVIEAUGUR_X`."""

    model_config = SettingsConfigDict(env_prefix="MOVIEAUGUR_", extra="ignore", frozen=True)

    mode: Literal["embedded", "distributed"] = "embedded"
    data_dir: Path = Field(default_factory=_default_data_dir)
    # Every log line one JSON object (time, level, logger, message, request_id, exception).
    log_json: bool = False

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
    # Command service processes `movieaugur up` starts; they share command_port (SO_REUSEPORT), each
    # with its own Kafka producer, so their transactions run side by side.
    command_workers: int = Field(1, ge=1, le=32)
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
    # Length of the list training publishes per user; 0 publishes none (at scale ranking every user
    # costs about a fit): query processes then rank each user on request by fold-in, as they do for
    # anyone with interactions whenever the model's artifacts are readable (<data_dir>/models).
    recommendations_per_user: int = Field(100, ge=0)
    # Fresh recommendations at query time (queries/fresh.py, offline/serving.py): fold the user's
    # current interactions into the published model version; give cold items a share of the slots;
    # demote what is like a disliked item.
    fold_in: bool = True
    fold_in_max_history: int = Field(500, ge=1, le=100_000)
    cold_item_share: float = Field(0.1, ge=0.0, le=1.0)
    cold_item_min_affinity: float = Field(0.05, ge=0.0, le=1.0)
    dislike_penalty: float = Field(1.0, ge=0.0, le=100.0)

    # A/B experiments (kernel/experiments.py): JSON `{"name": {"variant": {"model": m, "share": s}, ...}}`,
    # shares summing to 1; `?experiment=name` (or the default experiment, for requests naming no model)
    # serves the user's variant. Exposures go to the log in the background, every flush_seconds or
    # queue_max lists (more waiting are dropped and counted); conversion_actions count as conversions.
    experiments: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    default_experiment: str = ""
    experiment_conversion_actions: Annotated[tuple[str, ...], NoDecode] = ("view", "like", "watchlist", "rating")
    exposure_log: bool = True
    exposure_flush_seconds: float = Field(0.2, gt=0, le=60)
    exposure_queue_max: int = Field(10_000, ge=1, le=1_000_000)

    # Users' named lists (names like item types: lower-case letters, digits, '-', '_') and what
    # each does to recommendations: exclude (its items are left out), boost (those the model
    # ranked come first) or none (lists not named here).
    lists: Annotated[tuple[str, ...], NoDecode] = ("watchlist",)
    list_effects: Annotated[dict[str, ListEffect], NoDecode] = Field(default_factory=lambda: {"watchlist": _EXCLUDE})
    # New-arrival notifications: how many best-suited users one new title is announced to (0:
    # none), and how old (days since first catalogued) an arrival may be to be announced (0: any).
    arrival_notify_users: int = Field(20, ge=0, le=10_000)
    arrival_notify_max_age_days: float = Field(7.0, ge=0.0)

    # Distributed mode.
    topic_prefix: str = "movieaugur."
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_partitions: int = 3
    kafka_write_timeout_seconds: float = 5.0
    # What a projector's reader fetches per partition in one request (MB). It asks for more only
    # once a partition's fetched records are used up, and waits for that fetch: with 4 MB a replay
    # spent ~10 % of its time waiting for one (BENCHMARKS.md §7). A reader may hold this much per partition.
    kafka_fetch_mb: int = Field(8, ge=1, le=64)
    redis_url: str = "redis://127.0.0.1:16379/0"
    mongo_url: str = "mongodb://127.0.0.1:27018/?directConnection=true"
    mongo_database: str = "movieaugur"
    connect_url: str = "http://127.0.0.1:18083"
    # Projector-written views to keep in MongoDB instead of Redis (e.g. "matrix"); FerretDB's
    # SQLite backend takes a few ms per update, so the default keeps them all in Redis.
    document_projections: Annotated[tuple[str, ...], NoDecode] = ()

    # Offline.
    train_time_budget_seconds: float = 120.0
    # The columnar interaction snapshot (`movieaugur snapshot`); default <data_dir>/snapshot/interactions.
    # Distributed: a path every machine that trains sees (a shared volume).
    snapshot_dir: Path | None = None
    # Where training reads interactions: "auto" = the snapshot when one was built, else the log.
    train_source: Literal["auto", "log", "snapshot"] = "auto"
    # What one training run may use; EASE and the tuner's sample are sized to it.
    train_memory_gb: float = Field(8.0, gt=0)
    # The training engine when `train` (or the DAG) names none: implicit in this process, or spark.
    train_engine: Literal["implicit", "spark"] = "implicit"
    # `train --engine spark`: Spark master URL (local[2], or spark://host:7077), driver memory, and a
    # work folder the driver and the workers share (default <data_dir>/snapshot/spark-work).
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    spark_work_dir: Path | None = None
    tmdb_api_key: str = ""
    tmdb_bearer_token: str = ""
    tmdb_base_url: str = "https://api.themoviedb.org"
    tmdb_language: str = "en-US"
    tmdb_max_pages: int = 5
    tmdb_requests_per_10s: float = 40.0

    @field_validator(
        "item_types", "api_keys", "read_api_keys", "document_projections", "experiment_conversion_actions", mode="before"
    )
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

    @field_validator("lists", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return cls._split_list(value)

    @field_validator("lists")
    @classmethod
    def _list_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _LIST_NAME.match(name):
                raise ValueError(f"list name {name!r} is not valid: use lower-case letters, digits, '-' or '_' (at most 32)")
        return tuple(dict.fromkeys(value))

    @field_validator("list_effects", mode="before")
    @classmethod
    def _parse_list_effects(cls, value: Any) -> Any:
        """Accept JSON (`{"watchlist": "exclude"}`) or `watchlist=exclude,favourites=boost`."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            parsed = {}
            for part in filter(None, (p.strip() for p in text.split(","))):
                name, _, effect = part.partition("=")
                parsed[name.strip()] = effect.strip()
            return parsed
        return value

    @model_validator(mode="after")
    def _effects_name_lists(self) -> Settings:
        """An effect set for a list that is not configured is a mistake (a typo): refuse it. The
        default (watchlist=exclude) simply does not apply when no watchlist is configured."""
        unknown = sorted(set(self.list_effects) - set(self.lists))
        if unknown and "list_effects" in self.model_fields_set:
            raise ValueError(
                f"MOVIEAUGUR_LIST_EFFECTS names {', '.join(unknown)}, not in MOVIEAUGUR_LISTS ({', '.join(self.lists) or 'none'})"
            )
        return self

    @field_validator("experiments", mode="before")
    @classmethod
    def _parse_experiments(cls, value: Any) -> Any:
        """JSON text or a dict; every experiment valid (names, models, shares summing to 1)."""
        parsed = json.loads(value) if isinstance(value, str) else value
        parse_experiments(parsed)
        return parsed

    @model_validator(mode="after")
    def _default_experiment_known(self) -> Settings:
        if self.default_experiment and self.default_experiment not in self.experiments:
            raise ValueError(f"MOVIEAUGUR_DEFAULT_EXPERIMENT {self.default_experiment!r} is not in MOVIEAUGUR_EXPERIMENTS")
        return self

    def experiment_specs(self) -> dict[str, Experiment]:
        """The configured experiments, parsed (validated when the settings were read)."""
        return parse_experiments(self.experiments)

    def list_effect(self, name: str) -> str:
        """What list `name` does to recommendations: exclude, boost or none."""
        return self.list_effects.get(name, "none") if name in self.lists else "none"

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
