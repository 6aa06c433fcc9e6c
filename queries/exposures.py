"""Exposures (the lists served inside an experiment) into the log, in the background.

Serving a list must not wait for a log write (a SQLite commit embedded, a Kafka transaction with
acks=all distributed: milliseconds either way), nor add a log record per request (each record is
appended, then read and decoded by every projector of its stream). So the query side only queues
the served list, and this recorder appends what has queued every `MOVIEAUGUR_EXPOSURE_FLUSH_SECONDS`
(or as soon as MAX_LISTS wait) as one `RecommendationsServed` event holding all of them. The
trade-off, deliberately taken:
- an exposure still queued when the process dies (SIGKILL, a crash) is lost — at most one flush
  interval's worth; a clean shutdown flushes. Click-through then reads slightly high for that
  moment, for every variant alike;
- when the log is unavailable the event is kept and retried (its id is fixed when it is built, so
  a retry whose first attempt did land appends nothing twice), up to `MOVIEAUGUR_EXPOSURE_QUEUE_MAX`
  waiting lists; beyond that new exposures are dropped and counted
  (`movieaugur_exposures_dropped_total`) rather than growing memory or slowing reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from domain.events import RecommendationsServed
from domain.ports import EventLog

log = logging.getLogger(__name__)
#: One exposure event holds at most this many lists and this many items in all (a record stays
#: well under Kafka's default 1 MB message limit).
MAX_LISTS, MAX_ITEMS = 1000, 10_000


class ExposureRecorder:
    def __init__(self, log_: EventLog, flush_seconds: float, queue_max: int, registry: CollectorRegistry):
        self.log = log_
        self.flush_seconds = flush_seconds
        self.queue_max = queue_max
        self.pending: list[dict[str, Any]] = []  # lists served since the last flush
        self.ready: list[RecommendationsServed] = []  # events built, not appended yet (kept for a retry)
        self.waiting = 0  # lists in `pending` and `ready`
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.recorded = Counter(
            "movieaugur_exposures_recorded", "Lists served in experiments whose exposure reached the log", registry=registry
        )
        self.dropped = Counter(
            "movieaugur_exposures_dropped",
            "Exposures not recorded because MOVIEAUGUR_EXPOSURE_QUEUE_MAX were already waiting",
            registry=registry,
        )

    def record(self, served: dict[str, Any]) -> None:
        """Queue one served list (see RecommendationsServed.served); never waits. Dropped (and
        counted) when the queue is full."""
        if self.waiting >= self.queue_max:
            self.dropped.inc()
            return
        self.pending.append(served)
        self.waiting += 1
        if len(self.pending) >= MAX_LISTS:
            self._wake.set()

    def _seal(self) -> None:
        """What has queued, as events of at most MAX_LISTS lists and MAX_ITEMS items each. Their
        ids are fixed here, so a retry after a failed append cannot record a list twice."""
        chunk: list[dict[str, Any]] = []
        items = 0
        for served in self.pending:
            size = len(served.get("items") or ())
            if chunk and (len(chunk) >= MAX_LISTS or items + size > MAX_ITEMS):
                self.ready.append(RecommendationsServed.new(served=chunk))
                chunk, items = [], 0
            chunk.append(served)
            items += size
        if chunk:
            self.ready.append(RecommendationsServed.new(served=chunk))
        self.pending = []

    async def flush(self) -> None:
        """Append everything queued so far, an event at a time; on a log error keep it for later."""
        async with self._lock:
            self._seal()
            while self.ready:
                event = self.ready[0]
                try:
                    await self.log.append([event])
                except Exception as error:  # the log's failure must not end the recorder: retry later
                    log.warning("exposures not appended yet (%d lists waiting): %r", self.waiting, error)
                    return
                self.ready.pop(0)
                self.waiting -= len(event.served)
                self.recorded.inc(len(event.served))

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
