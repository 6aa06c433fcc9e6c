"""An in-place replay into SQLite builds the score index once at the end instead of moving it on
every upsert: the rebuilt view reads the same as the incrementally built one, and the index is
there again afterwards (also after a replay that failed half-way)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain.events import InteractionRecorded, from_unix
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from projections.popularity import SPACE, PopularityProjection, all_time_key, day_key
from projections.runner import Projector


def _events() -> list[InteractionRecorded]:
    return [
        InteractionRecorded.new(event_id=f"r{n}", timestamp=from_unix(1_700_000_000 + n * 3_600), user_id=f"u{n % 5}",
                                item_type="movie", item_id=f"m{n % 6}", action=["view", "like", "rating"][n % 3],
                                value=3.5 if n % 3 == 2 else None)
        for n in range(60)
    ]


def _has_rank_index(store: SQLiteViewStore) -> bool:
    rows = store._reader.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'zset_rank'").fetchall()
    return bool(rows)


async def _view(store: SQLiteViewStore) -> dict[str, list[tuple[str, float]]]:
    keys = [all_time_key("movie")] + [day_key("movie", day) for day in range(19_675, 19_679)]
    return {key: await store.top(SPACE, {key: 1.0}, 0, 100) for key in keys}


def test_a_replay_in_place_reads_the_same_and_keeps_the_index(tmp_path: Path) -> None:
    async def main() -> None:
        log = SQLiteEventLog(tmp_path / "log.db")
        store = SQLiteViewStore(tmp_path / "views.db")
        projector = Projector(PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store, batch_size=9)
        events = _events()
        for start in range(0, len(events), 13):  # built incrementally, batch by batch
            await log.append(events[start : start + 13])
            await projector.catch_up()
        incremental = await _view(store)
        assert incremental[all_time_key("movie")], "the view is empty: nothing was compared"
        report = await projector.replay()
        assert report.events == 60
        assert _has_rank_index(store)
        assert await _view(store) == incremental

    asyncio.run(main())


def test_a_failed_replay_leaves_the_index_in_place(tmp_path: Path) -> None:
    class Broken(PopularityProjection):
        def effect(self, event):  # type: ignore[no-untyped-def]
            raise RuntimeError("a projection bug found half-way through a replay")

    async def main() -> None:
        log = SQLiteEventLog(tmp_path / "log.db")
        await log.append(_events())
        store = SQLiteViewStore(tmp_path / "views.db")
        with pytest.raises(RuntimeError, match="half-way"):
            await Projector(Broken(ActionWeights(DEFAULT_ACTION_WEIGHTS)), log, store).replay()
        assert _has_rank_index(store)

    asyncio.run(main())
