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

from domain.events import INTERACTIONS, REDACTIONS, EventsRedacted
from domain.ports import EventLog, ReadResult
from domain.redactions import Redactions
from projections.base import Projection
from projections.changes import DEFAULT_GUARD_HORIZON, Batch, StaleTracking, ViewStore

log = logging.getLogger(__name__)

#: While following the log, how often a projector looks for new redactions (a catch-up or replay
#: always looks first; `movieaugur redact` replays the views it touches, so they end exact).
REDACTIONS_CHECK_SECONDS = 0.5
#: A view behind the log's end that no runner advanced for this long gets this runner's log readers
#: renewed: the fault tests saw a Kafka group reader stop fetching for good after two brokers died.
STALL_SECONDS = 30.0
#: A step that has not returned by then is cancelled (a read waiting on a broker that never answers).
STEP_TIMEOUT_SECONDS = 60.0
#: How long one step goes on reading while catching up, for a store that applies concurrently (each
#: batch read while the store applies the ones before it); a partition at its end stops early. A step
#: ends by waiting for everything it handed over, with the runner idle meanwhile: with a step of 8
#: batches per partition that wait was ~135 ms in every ~0.7 s of a replay (BENCHMARKS.md §7). The
#: bound keeps a step short enough for a stop, the stall watch and new redactions to be seen.
PIPELINE_SECONDS = 5.0
#: Batches of one partition handed to a store that applies them in order (ViewStore.applies_in_order)
#: and not yet answered. With one, the runner waited at each batch for the answer to the one before,
#: while Redis had nothing of that partition to work on.
APPLY_DEPTH = 3


class CatchUpStalled(RuntimeError):
    """A catch-up (or replay) stayed behind the log's end with no progress: nothing is promoted."""


@dataclass
class Applying:
    """A batch handed to the store: where its partition's position goes once it is applied."""

    next_offset: int
    events: int
    applied: asyncio.Future[None]


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
        guard_horizon: int = DEFAULT_GUARD_HORIZON,
        redactions_log: EventLog | None = None,
        stall_seconds: float = STALL_SECONDS,
    ):
        """`redactions_log` is where the redactions stream is read whole (default: `log_`; a
        projector worker that reads only its group's partitions passes a log that reads all)."""
        self.projection = projection
        self.log = log_
        self.store = store
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.guard_horizon = guard_horizon
        self.redactions_log = redactions_log or log_
        self.redactions = Redactions()
        self._redactions_read: dict[int, int] = {}
        self._redactions_checked = -REDACTIONS_CHECK_SECONDS
        # The view's positions as this runner last wrote or read them: the store's tracking is the
        # truth, re-read after a refused (stale) batch, an error, or a drop.
        self._positions: dict[str, int] | None = None
        # While the view is (re)built from the start: the log's end offsets when it began. Reaching
        # them marks the view complete even under sustained ingest, when no step is ever idle.
        self._target: dict[str, int] | None = None
        self.advanced = False
        self.stall_seconds = stall_seconds
        self._stall_watch: tuple[dict[str, int], float] | None = None  # positions, and since when
        self._stall_checked = 0.0

    async def refresh_redactions(self, force: bool = False) -> None:
        """Read redactions appended since the last look (projections of interactions only): on
        every catch-up, and at most every REDACTIONS_CHECK_SECONDS while following the log."""
        if INTERACTIONS not in self.projection.streams:
            return
        now = time.monotonic()
        if not force and now - self._redactions_checked < REDACTIONS_CHECK_SECONDS:
            return
        self._redactions_checked = now
        for partition in await self.redactions_log.partitions(REDACTIONS):
            start = self._redactions_read.get(partition, 0)
            while True:
                result = await self.redactions_log.read(REDACTIONS, partition, start, 1000)
                for logged in result.events:
                    if isinstance(logged.event, EventsRedacted):
                        self.redactions.add(logged.event)
                if result.next_offset <= start:
                    break
                start = result.next_offset
            self._redactions_read[partition] = start

    @property
    def name(self) -> str:
        return self.projection.name

    async def step(self, stop: asyncio.Event | None = None) -> int:
        """Apply a batch per partition (and go on for up to `PIPELINE_SECONDS` where the store
        applies concurrently, or until `stop` is set); return how many events were read.

        `self.advanced` tells whether any position moved (it can move past offsets that hold no
        event, such as Kafka's transaction markers, with zero events read)."""
        if self._positions is None:
            self._positions = await self.store.positions(self.name)
            if not self._positions:  # a first build, or its store lost the view
                self._target = await self._log_ends()
        positions = self._positions
        self.advanced = False
        sources = [(stream, partition, f"{stream}/{partition}") for stream in self.projection.streams
                   for partition in await self.log.partitions(stream)]
        read = [source for _, _, source in sources]
        starts = {source: positions.get(source, 0) for source in read}
        # A store that applies concurrently (Redis, a process of its own) applies a batch while the
        # next one of the same partition is read and decoded; a batch goes to the store only once
        # the one before it of its partition is applied (each names the position it starts from).
        # The others (SQLite, memory) apply each batch before the next read, one per partition per
        # step: reading beside an SQLite apply measured slower (the GIL), and short steps keep a
        # live view fresh.
        concurrent = self.store.applies_concurrently(self.name)
        depth = APPLY_DEPTH if concurrent and self.store.applies_in_order(self.name) else 1
        applying: dict[str, list[Applying]] = {source: [] for source in read}
        total = 0
        try:
            active = list(sources)
            deadline = time.monotonic() + PIPELINE_SECONDS
            while active:
                await self.refresh_redactions()  # before each round's reads; at most every REDACTIONS_CHECK_SECONDS
                for entry in list(active):
                    stream, partition, source = entry
                    start = starts[source]
                    result = await self.log.read(stream, partition, start, self.batch_size)
                    if result.next_offset <= start:
                        active.remove(entry)
                        continue
                    batch = self._batch(source, result, start)
                    queue = applying[source]
                    if len(queue) >= depth:
                        total += await self._settle(source, queue.pop(0), positions)
                    queue.append(Applying(result.next_offset, len(result.events),
                                          asyncio.ensure_future(self.store.apply(self.name, batch))))
                    starts[source] = result.next_offset
                    if not concurrent:
                        total += await self._settle(source, queue.pop(), positions)
                if (not concurrent or time.monotonic() >= deadline or (stop is not None and stop.is_set())
                        or self._positions is None):  # a batch was refused: the ones behind it will be too
                    break
        finally:
            failure: BaseException | None = None
            for source, queue in applying.items():
                for pending in queue:
                    try:
                        total += await self._settle(source, pending, positions)
                    except BaseException as error:
                        failure = failure or error
            if failure is not None:
                raise failure
        if not self.advanced:  # idle: look at the store's tracking again (a replay may have reset it)
            self._positions = None
        await self._mark_ready(positions, read)
        return total

    def _batch(self, source: str, result: ReadResult, start: int) -> Batch:
        batch = Batch(next_offsets={source: result.next_offset}, horizon=self.guard_horizon, start_offsets={source: start})
        covers = self.redactions.covers if self.redactions else None  # asked once a batch, not per event
        guarded = not self.log.unique_event_ids  # a log that cannot hold copies needs no guard
        effect_of, keep = self.projection.effect, batch.effects.append
        for item in result.events:
            event = item.event
            if covers is not None and covers(event):
                continue
            effect = effect_of(event)
            if effect.changes:
                if effect.guard is not None:  # stamped in place: a projection makes a new effect per event
                    if guarded:
                        effect.at = item.position.offset
                    else:
                        effect.guard = None
                keep(effect)
        return batch

    async def _settle(self, source: str, pending: Applying, positions: dict[str, int]) -> int:
        """Wait for one batch; record its position if it was applied and return its event count."""
        try:
            await pending.applied
        except StaleTracking:
            log.info("%s: %s was applied by another runner; re-reading positions", self.name, source)
            self._positions = None
            return 0
        except BaseException:
            self._positions = None
            raise
        positions[source] = pending.next_offset
        self.advanced = True
        return pending.events

    async def _mark_ready(self, positions: dict[str, int], read: list[str]) -> None:
        """Tell the store the view is complete (its read side answers 503 "rebuilding" until then)
        when this runner is idle, or when a (re)build reached the log's end as it was when the build
        began. The store refuses if its tracking is not `positions` any more (lost again, replayed)."""
        target = self._target
        if target is None and self.advanced:
            return  # following the log: marked when idle
        if target is not None and (any(positions.get(source, 0) < target.get(source, 0) for source in read)
                                   or (not read and any(target.values()))):
            return  # still rebuilding (an idle step too: a read may come back empty before the end,
            # and a group member reads nothing until the group assigns it partitions)
        if await self.store.mark_ready(self.name, positions):
            self._target = None

    async def lag(self) -> dict[str, int]:
        """Per source ("stream/partition"), how many offsets the view is behind the log's end now.

        Offsets, not events: Kafka's transaction markers take offsets too, so a view that has read
        everything can show a lag of a few offsets until the next event moves it past them."""
        return await self._lag_at(await self.store.positions(self.name))

    async def _lag_at(self, positions: dict[str, int]) -> dict[str, int]:
        behind: dict[str, int] = {}
        for stream in self.projection.streams:
            for partition, end in (await self.log.end_offsets(stream)).items():
                source = f"{stream}/{partition}"
                behind[source] = max(0, end - positions.get(source, 0))
        return behind

    async def _log_ends(self) -> dict[str, int]:
        """Per source ("stream/partition"), the offset the log's next event will get, now."""
        return {f"{stream}/{partition}": end for stream in self.projection.streams
                for partition, end in (await self.log.end_offsets(stream)).items()}

    async def caught_up(self) -> bool:
        """True when the view has applied everything the log held at the time of the call."""
        return not any((await self.lag()).values())

    async def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Process until the view holds everything the log held when the call began.

        A step that reads nothing is not taken for the end: a Kafka reader can come back empty
        while the fetcher is between rounds (a 20M-event replay stopped at 11 of 20 million and
        swapped in the partial view). The ends are read first; a view that stays behind them with
        no progress for `stall_seconds` raises CatchUpStalled rather than pass for complete."""
        total = 0
        # Together: each starts a reader of its own on a first call (a replay's start).
        _, ends, _ = await asyncio.gather(self.refresh_redactions(force=True), self._log_ends(),
                                          asyncio.gather(*(self.log.partitions(stream) for stream in self.projection.streams)))
        idle_since: float | None = None
        while True:
            count = await self.step()
            if progress and count:
                progress(count)
            total += count
            if self.advanced:
                idle_since = None
                continue
            positions = await self.store.positions(self.name)
            behind = {source: end - positions.get(source, 0) for source, end in ends.items() if positions.get(source, 0) < end}
            if not behind:
                return total
            now = time.monotonic()
            idle_since = idle_since or now
            if now - idle_since > self.stall_seconds:
                raise CatchUpStalled(f"{self.name}: no progress for {now - idle_since:.0f}s with {behind} offsets "
                                     "still to read; is the log reachable? (`movieaugur status`)")
            await self.log.wait_for_events(self.projection.streams, self.idle_wait)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until `stop` is set; survive transient errors with a pause."""
        while not stop.is_set():
            try:
                async with asyncio.timeout(STEP_TIMEOUT_SECONDS):  # no task per step, unlike wait_for
                    await self.step(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: projection step failed; retrying", self.name)
                self.advanced = False
                self._positions = None
                await asyncio.sleep(1.0)
            if not self.advanced:
                await self._renew_if_stalled()
                await self.log.wait_for_events(self.projection.streams, self.idle_wait)

    async def _renew_if_stalled(self) -> None:
        """Every few seconds while idle: if the view is behind the log's end and its positions have
        not moved for `stall_seconds` (no runner of it advanced), renew this runner's log readers."""
        now = time.monotonic()
        if now - self._stall_checked < min(5.0, self.stall_seconds / 2):
            return
        self._stall_checked = now
        try:
            positions = await self.store.positions(self.name)
            behind = {source: lag for source, lag in (await self._lag_at(positions)).items() if lag}
        except Exception as error:  # the next step reports what is wrong; the watch just waits
            log.debug("%s: stall check failed: %r", self.name, error)
            return
        watch = self._stall_watch
        if not behind or watch is None or watch[0] != positions:
            self._stall_watch = (positions, now) if behind else None
            return
        if now - watch[1] >= self.stall_seconds:
            log.warning("%s: %s behind the log's end with no progress for %.0fs; renewing its log readers",
                        self.name, behind, now - watch[1])
            await self.log.renew_readers()
            self._stall_watch = (positions, now)

    async def replay(self, progress: Callable[[int], None] | None = None) -> ReplayReport:
        """Rebuild the view from the start of the log.

        Stores that can (Redis) rebuild into a fresh copy while the live view keeps answering, then
        swap atomically; the others (embedded SQLite, where the demo is offline meanwhile) drop the
        view and rebuild it in place."""
        started = time.perf_counter()
        self._positions = None
        shadow = self.store.shadow(self.name)
        if shadow is None:
            async with self.store.rebuilding_in_place(self.name):
                await self.store.drop(self.name, self.projection.spaces)
                events = await self.catch_up(progress)
        else:
            await shadow.drop(self.name, self.projection.spaces)
            rebuild = Projector(
                self.projection, self.log, shadow, self.batch_size,
                guard_horizon=self.guard_horizon, redactions_log=self.redactions_log,
            )
            events = await rebuild.catch_up(progress)
            await self.store.promote(self.name, self.projection.spaces, shadow)
        self._positions = None
        return ReplayReport(self.name, events, time.perf_counter() - started)
