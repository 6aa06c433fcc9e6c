"""A store that applies concurrently (Redis) has batches of several partitions in flight while the
runner reads on (projections/runner.py, PIPELINE_BATCHES). Batches of one partition must still apply
in order, and none after one that failed: the view would skip the failed batch's events for good.
(Handing over a partition's next batch before the one ahead of it settled was tried, chained after
it; it measured no faster, so the runner still waits for the one ahead.)"""

from __future__ import annotations

import asyncio

import pytest

from domain.events import InteractionRecorded, from_unix
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.memory_views import MemoryViewStore
from projections.changes import Batch
from projections.popularity import SPACE, PopularityProjection, all_time_key
from projections.runner import Projector


class SlowConcurrentStore(MemoryViewStore):
    """The in-memory store, applying concurrently as Redis does, each batch after a pause (earlier
    ones longer, so one handed over too early would overtake); the `failing`-th apply fails."""

    def __init__(self, failing: int | None = None) -> None:
        super().__init__()
        self.failing = failing
        self.calls = 0
        self.applied: list[tuple[int, int]] = []  # (start, next offset) of interactions/0, in order

    def applies_concurrently(self, projection: str) -> bool:
        return True

    async def apply(self, projection: str, batch: Batch) -> None:
        self.calls += 1
        call = self.calls
        await asyncio.sleep(0.01 * (4 - min(call, 3)))  # earlier batches take longer: an overtaking one would show
        if call == self.failing:
            raise ConnectionError("the store went away")
        await super().apply(projection, batch)
        if "interactions/0" in batch.next_offsets:
            self.applied.append((batch.start_offsets["interactions/0"], batch.next_offsets["interactions/0"]))


def _events(n: int) -> list[InteractionRecorded]:
    return [InteractionRecorded.new(event_id=f"e{i}", timestamp=from_unix(1_700_000_000 + i), user_id="u1",
                                    item_type="movie", item_id=f"m{i % 5}", action="view") for i in range(n)]


def test_batches_of_a_partition_apply_in_order_though_handed_over_early() -> None:
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(50))
        store = SlowConcurrentStore()
        runner = Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store, batch_size=10)
        assert await runner.step() == 50
        assert store.applied == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
        assert sum(score for _, score in await store.top(SPACE, {all_time_key("movie"): 1.0}, 0, 10)) == 50

    asyncio.run(main())


def test_no_batch_applies_after_one_of_its_partition_failed() -> None:
    async def main() -> None:
        log = MemoryEventLog(partitions=1)
        await log.append(_events(50))
        store = SlowConcurrentStore(failing=2)
        runner = Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store, batch_size=10)
        with pytest.raises(ConnectionError):
            await runner.step()
        assert store.applied == [(0, 10)]  # the batch after the failed one was not applied over the gap
        assert await store.positions(runner.name) == {"interactions/0": 10}
        assert await runner.catch_up() == 40  # and the next steps read from there
        assert sum(score for _, score in await store.top(SPACE, {all_time_key("movie"): 1.0}, 0, 10)) == 50

    asyncio.run(main())
