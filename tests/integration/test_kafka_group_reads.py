"""A projector worker's group reader against the real broker: it must keep seeing new events after
its group rebalances (a worker joins or leaves), also when it had read every partition to its end
just before. Found the hard way: after a rebalance the fetcher prefetched from offset 0, kept those
records buffered, and the end it reported never moved again, so a projection stalled for good."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from domain.events import INTERACTIONS, InteractionRecorded
from infra.local.testing import ensure_stack
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.memory_views import MemoryViewStore
from movieaugur.stack_settings import stack_settings
from projections.history import HistoryProjection
from projections.runner import Projector

pytestmark = pytest.mark.stack


def _events(tag: str, count: int) -> list[InteractionRecorded]:
    return [
        InteractionRecorded.new(event_id=f"{tag}-{i}", user_id=f"u{i}", item_id=f"m{i % 7}", item_type="movie")
        for i in range(count)
    ]


async def _read_to_end(log: KafkaEventLog, positions: dict[int, int], expect: int, timeout: float = 60.0) -> int:
    """Read the assigned partitions from `positions` on, as a projector does, until `expect` events
    arrived; return how many were read."""
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < expect:
        assert time.monotonic() < deadline, f"read {seen} of {expect} events; positions {positions}"
        for partition in await log.partitions(INTERACTIONS):
            start = positions.get(partition, 0)
            result = await log.read(INTERACTIONS, partition, start, 500)
            seen += len(result.events)
            positions[partition] = result.next_offset
        await asyncio.sleep(0.05)
    return seen


async def test_group_reader_sees_new_events_after_a_rebalance() -> None:
    settings = stack_settings(ensure_stack()).model_copy(update={"topic_prefix": f"g{uuid.uuid4().hex[:8]}."})
    writer = KafkaEventLog(settings)
    reader = KafkaEventLog(settings, group=f"{settings.topic_prefix}readers")
    joiner = KafkaEventLog(settings, group=f"{settings.topic_prefix}readers")
    try:
        await writer.ensure_topics()
        await writer.append(_events("first", 300))
        positions: dict[int, int] = {}
        assert await _read_to_end(reader, positions, 300) == 300  # every partition read to its end

        # A second member joins (the group rebalances), then leaves (it rebalances back).
        await joiner.partitions(INTERACTIONS)
        deadline = time.monotonic() + 60
        while len(await reader.partitions(INTERACTIONS)) == 3 or not await joiner.partitions(INTERACTIONS):
            assert time.monotonic() < deadline, "the group never rebalanced onto the joiner"
            await asyncio.sleep(0.2)
        await joiner.close()
        while len(await reader.partitions(INTERACTIONS)) < 3:
            assert time.monotonic() - deadline < 60, "the reader never got its partitions back"
            await asyncio.sleep(0.2)

        await writer.append(_events("second", 300))
        assert await _read_to_end(reader, positions, 300) == 300
    finally:
        await writer.close()
        await reader.close()
        await joiner.close()


@pytest.mark.parametrize("then_rejoins", [False, True], ids=["stalled", "stalled-then-rejoined"])
async def test_a_projector_whose_reader_stopped_fetching_renews_it(then_rejoins: bool) -> None:
    """A reader that stops fetching (here: its fetch loop cancelled; in the fault tests it happened
    after two brokers died) leaves the view behind for good unless the projector notices that the
    view lags the log with no progress and renews its readers. When its group rejoins as well, the
    fresh assignment has no positions and nothing left to find them: a read must not wait for one
    forever (each step hung until its 60 s timeout)."""
    settings = stack_settings(ensure_stack()).model_copy(update={"topic_prefix": f"s{uuid.uuid4().hex[:8]}."})
    writer = KafkaEventLog(settings)
    reader = KafkaEventLog(settings, group=f"{settings.topic_prefix}readers")
    redactions = KafkaEventLog(settings)  # read whole, outside the group, as a projector worker does
    projector = Projector(HistoryProjection(), reader, MemoryViewStore(), stall_seconds=2.0, redactions_log=redactions)
    await writer.ensure_topics()
    stop = asyncio.Event()
    running = asyncio.create_task(projector.run(stop))
    try:
        await writer.append(_events("before", 100))
        await _until(projector.caught_up, "the view caught up with the first events")
        stuck = reader._consumers[INTERACTIONS]
        # Its fetcher fetches nothing more from here on. Pausing its partitions drops what a fetch
        # in flight brings back; stopping the fetch loop keeps it from fetching again after a
        # group rejoin (a metadata change right after the topics were made, a coordinator that
        # moved) hands it a fresh assignment without the pause. CI saw a pause alone undone so.
        stuck.pause(*stuck.assignment())
        stuck._fetcher._fetch_task.cancel()
        if then_rejoins:
            stuck._coordinator.request_rejoin()
        before = sum((await writer.end_offsets(INTERACTIONS)).values())
        await writer.append(_events("after", 100))

        async def log_has_them() -> bool:
            # A commit's markers reach the partitions a moment after the append is acknowledged;
            # until then a read_committed end is the old one and the view would look caught up.
            return sum((await writer.end_offsets(INTERACTIONS)).values()) >= before + 100

        await _until(log_has_them, "the log's committed end moved past the second batch")
        await _until(projector.caught_up, "the view caught up again after its reader stopped fetching")
        assert reader._consumers[INTERACTIONS] is not stuck, "caught up without renewing the reader?"
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await writer.close()
        await reader.close()
        await redactions.close()


async def _until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.1)


async def test_every_scan_sees_every_event() -> None:
    """Training reads the whole log with `scan`. A read answers empty when its fetch is not back
    within its short wait (right after a seek, while the fetcher's long poll is in flight), and scan
    took that for the partition's end: the second of two scans in a row saw 20 of 30 events."""
    settings = stack_settings(ensure_stack()).model_copy(update={"topic_prefix": f"c{uuid.uuid4().hex[:8]}."})
    log = KafkaEventLog(settings)
    try:
        await log.ensure_topics()
        await log.append(_events("scanned", 30))

        async def committed() -> bool:
            # A scan reads to the read_committed end as of its start; a commit's markers reach the
            # partitions a moment after the append is acknowledged (the same wait as above).
            return sum((await log.end_offsets(INTERACTIONS)).values()) >= 30

        await _until(committed, "the log's committed end moved past the batch")
        for _ in range(3):
            assert sorted([e.event.event_id async for e in log.scan(INTERACTIONS)]) == sorted(f"scanned-{i}" for i in range(30))
    finally:
        await log.close()
