"""A store that applies concurrently (Redis) has batches of several partitions in flight while the
runner reads on (projections/runner.py, PIPELINE_SECONDS); one that also applies in order gets a
partition's next batches before the one ahead is answered (APPLY_DEPTH). Either way batches of one
partition must apply in order, and none after one that failed: the view would skip the failed
batch's events for good."""

from __future__ import annotations

import asyncio

import pytest

from domain.events import InteractionRecorded, from_unix
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.memory_views import MemoryViewStore
from projections.changes import Batch, StaleTracking
from projections.popularity import SPACE, PopularityProjection, all_time_key
from projections.runner import APPLY_DEPTH, Projector


class SlowConcurrentStore(MemoryViewStore):
    """The in-memory store, applying concurrently as Redis does, each batch after a pause (earlier
    ones longer, so one handed over too early would overtake); the `failing`-th apply fails. With
    `in_order` it keeps Redis's promise too (RedisViewStore.applies_in_order): batches apply in
    the order handed over, and one that does not start where the view ends is refused."""

    def __init__(self, failing: int | None = None, in_order: bool = False) -> None:
        super().__init__()
        self.failing = failing
        self.in_order = in_order
        self.turn = asyncio.Lock()  # first come, first served: the order of the calls
        self.calls = 0
        self.applied: list[tuple[int, int]] = []  # (start, next offset) of interactions/0, in order

    def applies_concurrently(self, projection: str) -> bool:
        return True

    def applies_in_order(self, projection: str) -> bool:
        return self.in_order

    async def apply(self, projection: str, batch: Batch) -> None:
        self.calls += 1
        call = self.calls
        if self.in_order:
            async with self.turn:
                await self._apply(projection, batch, call)
        else:
            await self._apply(projection, batch, call)

    async def _apply(self, projection: str, batch: Batch, call: int) -> None:
        await asyncio.sleep(0.01 * (4 - min(call, 3)))  # earlier batches take longer: an overtaking one would show
        if call == self.failing:
            raise ConnectionError("the store went away")
        if self.in_order:
            for source, start in batch.start_offsets.items():
                if (await self.positions(projection)).get(source, 0) != start:
                    raise StaleTracking(f"{source} does not end at {start}")
        await super().apply(projection, batch)
        if "interactions/0" in batch.next_offsets:
            self.applied.append((batch.start_offsets["interactions/0"], batch.next_offsets["interactions/0"]))


def _popularity(log: MemoryEventLog, store: SlowConcurrentStore) -> Projector:
    return Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store, batch_size=10)


def _events(n: int) -> list[InteractionRecorded]:
    return [InteractionRecorded.new(event_id=f"e{i}", timestamp=from_unix(1_700_000_000 + i), user_id="u1",
                                    item_type="movie", item_id=f"m{i % 5}", action="view") for i in range(n)]


@pytest.mark.parametrize("in_order", [False, True])
def test_batches_of_a_partition_apply_in_order(in_order: bool) -> None:
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(50))
        store = SlowConcurrentStore(in_order=in_order)
        runner = _popularity(log, store)
        assert await runner.step() == 50
        assert store.applied == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
        assert sum(score for _, score in await store.top(SPACE, {all_time_key("movie"): 1.0}, 0, 10)) == 50

    asyncio.run(main())


@pytest.mark.parametrize("in_order", [False, True])
def test_no_batch_applies_after_one_of_its_partition_failed(in_order: bool) -> None:
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(50))
        store = SlowConcurrentStore(failing=2, in_order=in_order)
        runner = _popularity(log, store)
        with pytest.raises(ConnectionError):
            await runner.step()
        assert store.applied == [(0, 10)]  # the batch after the failed one was not applied over the gap
        assert await store.positions(runner.name) == {"interactions/0": 10}
        assert await runner.catch_up() == 40  # and the next steps read from there
        assert sum(score for _, score in await store.top(SPACE, {all_time_key("movie"): 1.0}, 0, 10)) == 50

    asyncio.run(main())


def test_a_step_of_a_concurrent_store_reads_on_to_the_end_and_waits_once() -> None:
    """A catch-up is one step, not one per few batches: each step ends waiting for every batch it
    handed over, with nothing read meanwhile (~135 ms idle in every 0.7 s of a replay at 8 batches
    per partition; BENCHMARKS.md §7)."""
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(300))
        store = SlowConcurrentStore(in_order=True)
        runner = _popularity(log, store)
        assert await runner.step() == 300  # 30 batches of one partition
        assert store.applied[-1] == (290, 300) and len(store.applied) == 30

    asyncio.run(main())


def test_a_step_ends_after_the_round_in_which_its_stop_is_set() -> None:
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(300))
        store = SlowConcurrentStore(in_order=True)
        runner = _popularity(log, store)
        stop = asyncio.Event()
        stop.set()
        assert await runner.step(stop) == 10  # one batch per partition, then it hands back control
        assert await runner.step() == 290

    asyncio.run(main())


def test_a_step_stops_reading_once_a_batch_was_refused() -> None:
    """The batches behind a refused one would be refused too: the step ends and the next one reads
    again from where the view ends."""
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(300))
        store = SlowConcurrentStore(in_order=True)
        runner = _popularity(log, store)
        await runner.step()
        await log.append(_events(600)[300:])
        await store.drop(runner.name, runner.projection.spaces)  # the view is lost: the first batch is refused
        calls = store.calls
        assert await runner.step() == 0
        assert store.calls - calls <= 1 + APPLY_DEPTH  # the refused batch and at most those already in flight behind it
        assert await runner.catch_up() == 600  # rebuilt from the start

    asyncio.run(main())
