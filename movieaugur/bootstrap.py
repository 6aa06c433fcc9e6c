"""One bootstrap: settings in, the wired adapters out.

The mode (embedded or distributed) chooses the event log and the view store; everything built on
top (projections, command and query services, training) takes them through their ports and does
not know which it got.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.codec import EventCodec
from domain.configuration import weights_of
from domain.ports import EventLog
from kernel.settings import Settings
from projections.base import Projection
from projections.changes import ViewStore
from projections.registry import build_projections
from projections.runner import Projector


@dataclass
class Container:
    settings: Settings
    log: EventLog
    store: ViewStore
    codec: EventCodec
    projections: dict[str, Projection] = field(default_factory=dict)
    follower_logs: dict[str, EventLog] = field(default_factory=dict)
    # Projectors that keep views in this process's memory (the query side's local catalog).
    local_projectors: list[Projector] = field(default_factory=list)

    def projector(self, name: str, follow: bool = False, **kwargs: Any) -> Projector:
        """A projector over the whole log (catch-up, replay) or, with `follow`, a worker that
        shares the projection's partitions with the other workers (distributed mode)."""
        try:
            projection = self.projections[name]
        except KeyError:
            raise KeyError(f"no projection {name!r}; known: {', '.join(self.projections)}") from None
        log = self.follower_log(name) if follow else self.log
        kwargs.setdefault("guard_horizon", self.settings.dedupe_horizon_events)
        return Projector(projection, log, self.store, redactions_log=self.log, **kwargs)

    def follower_log(self, name: str) -> EventLog:
        if self.settings.mode != "distributed":
            return self.log
        if name not in self.follower_logs:
            from movieaugur.adapters.kafka_log import KafkaEventLog

            group = f"{self.settings.topic_prefix}projection.{name}"
            self.follower_logs[name] = KafkaEventLog(self.settings, self.codec, group=group)
        return self.follower_logs[name]

    def projectors(self, follow: bool = False, **kwargs: Any) -> list[Projector]:
        return [self.projector(name, follow=follow, **kwargs) for name in self.projections]

    async def close(self) -> None:
        for log in self.follower_logs.values():
            await log.close()
        await self.log.close()
        await self.store.close()


def build_log(settings: Settings, codec: EventCodec) -> EventLog:
    if settings.mode == "embedded":
        from movieaugur.adapters.sqlite_log import SQLiteEventLog

        return SQLiteEventLog(settings.log_path, codec)
    from movieaugur.adapters.event_ids import RedisEventIds
    from movieaugur.adapters.kafka_log import KafkaEventLog

    event_ids = RedisEventIds(settings.redis_url, settings.topic_prefix, settings.dedupe_horizon_seconds)
    return KafkaEventLog(settings, codec, event_ids=event_ids)


def build_store(settings: Settings) -> ViewStore:
    if settings.mode == "embedded":
        from movieaugur.adapters.sqlite_views import SQLiteViewStore

        return SQLiteViewStore(settings.views_path)
    from movieaugur.adapters.distributed_views import build_distributed_store

    return build_distributed_store(settings)


async def bootstrap(settings: Settings) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    codec = EventCodec()
    log = build_log(settings, codec)
    store = build_store(settings)
    await log.start()
    await store.start()
    projections = build_projections(weights_of(settings))
    if settings.mode == "distributed":  # views a Connect sink keeps have no projector here
        projections = {name: p for name, p in projections.items() if p.sink is None}
    return Container(settings, log, store, codec, projections)
