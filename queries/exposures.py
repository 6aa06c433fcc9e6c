"""Exposures (the lists served inside an experiment) into the log, in the background.

Serving a list must not wait for a log write (a SQLite commit embedded, a Kafka transaction with
acks=all distributed: milliseconds either way). So the query side only queues the exposure event
and this recorder appends what has queued every `MOVIEAUGUR_EXPOSURE_FLUSH_SECONDS`, or as soon as
a batch's worth is waiting, in one append. The trade-off, deliberately taken:
- an exposure still queued when the process dies (SIGKILL, a crash) is lost — at most one flush
  interval's worth; a clean shutdown flushes. Click-through then reads slightly high for that
  moment, for every variant alike;
- when the log is unavailable the batch is kept and retried (the event id is the recommendation
  id, so a retry that did land appends nothing twice), up to `MOVIEAUGUR_EXPOSURE_QUEUE_MAX`
  waiting events; beyond that new exposures are dropped and counted
  (`movieaugur_exposures_dropped_total`) rather than growing memory or slowing reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry, Counter

from domain.events import RecommendationsServed
from domain.ports import EventLog

log = logging.getLogger(__name__)
#: Exposures appended in one log write at most (a flush takes several batches when more wait).
BATCH = 2000


class ExposureRecorder:
    def __init__(self, log_: EventLog, flush_seconds: float, queue_max: int, registry: CollectorRegistry):
        self.log = log_
        self.flush_seconds = flush_seconds
        self.queue_max = queue_max
        self.pending: list[RecommendationsServed] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.recorded = Counter(
            "movieaugur_exposures_recorded", "Exposure events appended to the log", registry=registry
        )
        self.dropped = Counter(
            "movieaugur_exposures_dropped",
            "Exposures not recorded because MOVIEAUGUR_EXPOSURE_QUEUE_MAX were already waiting",
            registry=registry,
        )

    def record(self, event: RecommendationsServed) -> None:
        """Queue one exposure; never waits. Dropped (and counted) when the queue is full."""
        if len(self.pending) >= self.queue_max:
            self.dropped.inc()
            return
        self.pending.append(event)
        if len(self.pending) >= BATCH:
            self._wake.set()

    async def flush(self) -> None:
        """Append everything queued so far, a batch at a time; on a log error keep it queued."""
        async with self._lock:
            while self.pending:
                batch = self.pending[:BATCH]
                try:
                    result = await self.log.append(batch)
                except Exception as error:  # the log's failure must not end the recorder: retry later
                    log.warning("exposures not appended yet (%d waiting): %r", len(self.pending), error)
                    return
                del self.pending[: len(batch)]
                self.recorded.inc(result.appended)

    async def running(self, _app: object = None) -> AsyncIterator[None]:
        """A cleanup context (aiohttp's `cleanup_ctx`): flush every interval, or as soon as a
        batch is waiting, while the app runs; a last flush at shutdown."""
        stopping = False

        async def loop() -> None:
            while not stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
                self._wake.clear()
                await self.flush()

        task = asyncio.create_task(loop(), name="exposure-recorder")
        try:
            yield
        finally:
            stopping = True
            self._wake.set()
            await task
            await self.flush()
