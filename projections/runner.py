"""Runs a projection: read from the log where the view says it stopped, apply, repeat.

The view's own tracking positions are the only cursor (never a consumer-group offset), so a
projector killed at any point resumes exactly where its last committed batch ended, and a replay is
the same code started from empty positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.ports import EventLog
from projections.base import Projection
from projections.changes import Batch, StaleTracking, ViewStore

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    projection: str
    events: int
    seconds: float


class Projector:
    def __init__(
        self,
        projection: Projection,
        log_: EventLog,
        store: ViewStore,
        batch_size: int = 2000,
        idle_wait: float = 0.5,
    ):
        self.projection = projection
        self.log = log_
        self.store = store
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.advanced = False

    @property
    def name(self) -> str:
        return self.projection.name

    async def step(self) -> int:
        """Apply at most one batch per partition; return how many events were read.

        `self.advanced` tells whether any position moved (it can move past offsets that hold no
        event, such as Kafka's transaction markers, with zero events read)."""
        positions = await self.store.positions(self.name)
        total = 0
        self.advanced = False
        for stream in self.projection.streams:
            for partition in await self.log.partitions(stream):
                source = f"{stream}/{partition}"
                start = positions.get(source, 0)
                result = await self.log.read(stream, partition, start, self.batch_size)
                if result.next_offset <= start:
                    continue
                batch = Batch(next_offsets={source: result.next_offset})
                for item in result.events:
                    effect = self.projection.effect(item.event)
                    if effect.changes:
                        batch.effects.append(effect)
                try:
                    await self.store.apply(self.name, batch)
                except StaleTracking:
                    log.info("%s: %s was applied by another runner; re-reading positions", self.name, source)
                    return total
                total += len(result.events)
                self.advanced = True
        return total

    async def caught_up(self) -> bool:
        """True when the view has applied everything the log held at the time of the call."""
        positions = await self.store.positions(self.name)
        for stream in self.projection.streams:
            for partition, end in (await self.log.end_offsets(stream)).items():
                if positions.get(f"{stream}/{partition}", 0) < end:
                    return False
        return True

    async def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Process until nothing is left to read at the time of the call's last read."""
        total = 0
        while True:
            count = await self.step()
            if progress and count:
                progress(count)
            total += count
            if not self.advanced:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until `stop` is set; survive transient errors with a pause."""
        while not stop.is_set():
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep following; the error is logged with context
                log.exception("%s: projection step failed; retrying", self.name)
                self.advanced = False
                await asyncio.sleep(1.0)
            if not self.advanced:
                await self.log.wait_for_events(self.projection.streams, self.idle_wait)

    async def replay(self, progress: Callable[[int], None] | None = None) -> ReplayReport:
        """Rebuild the view from the start of the log.

        Stores that can (Redis) rebuild into a fresh copy while the live view keeps answering, then
        swap atomically; the others (embedded SQLite, where the demo is offline meanwhile) drop the
        view and rebuild it in place."""
        started = time.perf_counter()
        shadow = self.store.shadow(self.name)
        if shadow is None:
            await self.store.drop(self.name, self.projection.spaces)
            events = await self.catch_up(progress)
        else:
            await shadow.drop(self.name, self.projection.spaces)
            events = await Projector(self.projection, self.log, shadow, self.batch_size).catch_up(progress)
            await self.store.promote(self.name, self.projection.spaces, shadow)
        return ReplayReport(self.name, events, time.perf_counter() - started)
