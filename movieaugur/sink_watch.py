"""Views that Kafka Connect keeps come back by themselves when their collection vanishes.

Why: a sink whose collection was dropped (by hand, a restore that left it out, a lost volume) has
nothing to redo — its committed offsets say every record was copied — so the view would stay empty
for good. A projector worker looks every few seconds: a collection that is missing although the
sink has already committed offsets (it had copied something) gets the sink reset, the same reset
`movieaugur replay` does, and a marker (movieaugur/adapters/sink_rebuilds.py) makes reads of the
view answer 503 "rebuilding" until the sink's committed offsets reach the topic's end as it stood
at the reset. Workers race for the marker; the one that takes it resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient

from domain.configuration import weights_of
from movieaugur.adapters import sink_rebuilds
from movieaugur.adapters.connect_sinks import reset_sink
from movieaugur.adapters.distributed_views import RoutedViewStore
from movieaugur.bootstrap import Container
from projections.base import Projection
from projections.registry import build_projections

log = logging.getLogger(__name__)

#: How often a worker looks for vanished sink collections (and at a rebuild's progress).
CHECK_SECONDS = 5.0


class SinkWatch:
    def __init__(self, container: Container, interval: float = CHECK_SECONDS) -> None:
        if not isinstance(container.store, RoutedViewStore):
            raise TypeError("watching Connect sinks needs the distributed view store")
        self.settings = container.settings
        self.log = container.log
        self.store = container.store
        self.interval = interval
        self.sinks: list[Projection] = [p for p in build_projections(weights_of(self.settings)).values() if p.sink]
        self._admin: AIOKafkaAdminClient | None = None  # one client for the watcher's life

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except Exception:
                log.exception("checking the Connect sinks' collections failed; trying again in %.0f s", self.interval)
                await self._drop_admin()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        await self._drop_admin()

    async def check(self) -> None:
        present = set(await self.store.mongo.db.list_collection_names())
        for projection in self.sinks:
            assert projection.sink is not None
            connector = projection.sink.connector_name(self.settings.topic_prefix)
            targets = await sink_rebuilds.rebuilding(self.store.redis, projection.name)
            if targets is None and projection.sink.collection in present:
                continue  # the usual case: no rebuild, the collection is there; ask Kafka nothing
            committed = await self._committed(connector)
            if targets is not None:
                # A transaction's commit marker takes the last offset; the sink commits up to the
                # last record it wrote, so one short of the end counts as there.
                if all(committed.get(p, 0) >= end - 1 for p, end in targets.items()):
                    await sink_rebuilds.finish(self.store.redis, projection.name)
                    log.info("%s: the Connect sink copied the topic again; the view answers again", projection.name)
                continue
            if not any(committed.values()):
                continue  # never copied anything yet (a sink that is starting)
            ends = {str(p): end for stream in projection.streams for p, end in (await self.log.end_offsets(stream)).items()}
            if not await sink_rebuilds.begin(self.store.redis, projection.name, ends):
                continue  # another worker is on it
            log.warning("%s: collection %r vanished; resetting %s to copy its topic again (reads answer 503 meanwhile)",
                        projection.name, projection.sink.collection, connector)
            try:
                await reset_sink(self.settings.connect_url, connector, _nothing_to_empty)
            except BaseException:
                await sink_rebuilds.finish(self.store.redis, projection.name)  # the next look tries again
                raise

    async def _committed(self, connector: str) -> dict[str, int]:
        """The sink's committed offsets per partition (Connect's consumer group is connect-<name>)."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=10_000)
            await admin.start()
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(f"connect-{connector}")
        return {str(tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _drop_admin(self) -> None:
        """Close the admin client (after an error, a new one is made for the next look)."""
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


async def _nothing_to_empty() -> None:
    """The collection is already gone."""
