"""A catch-up (and so a replay) ends at the log's end as it was when it began, not at the first
read that comes back empty: a Kafka reader returns nothing while its fetcher is between rounds, and
a 20M-event replay once stopped at 11 million and swapped in the partial view."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain.events import InteractionRecorded, from_unix
from domain.ports import ReadResult
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from projections.popularity import SPACE, PopularityProjection, all_time_key
from projections.runner import CatchUpStalled, Projector


class GappyLog(MemoryEventLog):
    """The in-memory log, except that reads come back empty at times before the end, as a Kafka
    reader's do between fetch rounds: `run` reads that answer, then `run` that come back empty
    (`run` 0: no read ever answers)."""

    def __init__(self, run: int) -> None:
        super().__init__(partitions=3)
        self.run = run
        self.reads = 0

    async def read(self, stream: str, partition: int, start: int, limit: int) -> ReadResult:
        self.reads += 1
        if not self.run or (self.reads // self.run) % 2 == 1:
            return ReadResult([], start)
        return await super().read(stream, partition, start, limit)


def _events(n: int) -> list[InteractionRecorded]:
    return [InteractionRecorded.new(event_id=f"e{i}", timestamp=from_unix(1_700_000_000 + i), user_id=f"u{i % 7}",
                                    item_type="movie", item_id=f"m{i % 5}", action="view") for i in range(n)]


def test_empty_reads_before_the_end_do_not_end_a_replay(tmp_path: Path) -> None:
    async def main() -> None:
        log = GappyLog(run=4)  # some steps read nothing from any partition
        await log.append(_events(300))
        store = SQLiteViewStore(tmp_path / "views.db")
        report = await Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store,
                                 batch_size=10, idle_wait=0.01).replay()
        assert report.events == 300
        total = sum(score for _, score in await store.top(SPACE, {all_time_key("movie"): 1.0}, 0, 10))
        assert total == 300.0
        assert await store.positions("popularity") == {
            f"interactions/{p}": end for p, end in (await log.end_offsets("interactions")).items() if end}

    asyncio.run(main())


def test_a_catch_up_that_cannot_progress_says_so_instead_of_passing_for_complete(tmp_path: Path) -> None:
    async def main() -> None:
        log = GappyLog(run=0)  # the log has events, yet no read returns any
        await log.append(_events(30))
        store = SQLiteViewStore(tmp_path / "views.db")
        projector = Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store,
                              idle_wait=0.01, stall_seconds=0.2)
        with pytest.raises(CatchUpStalled, match="offsets still to read"):
            await projector.catch_up()

    asyncio.run(main())
