"""A log that cannot hold two events with one id (the embedded SQLite log) lets projectors skip
their per-event duplicate guards: the view comes out equal to one built with guards from a log
that did redeliver, and no guard rows are written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from domain.events import InteractionRecorded, from_unix
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from projections.popularity import SPACE, PopularityProjection, all_time_key, day_key
from projections.runner import Projector


def _events() -> list[InteractionRecorded]:
    return [
        InteractionRecorded.new(event_id=f"e{n}", timestamp=from_unix(1_700_000_000 + n * 3_600), user_id=f"u{n % 3}",
                                item_type="movie", item_id=f"m{n % 4}", action=["view", "like", "rating"][n % 3],
                                value=4.5 if n % 3 == 2 else None)
        for n in range(40)
    ]


async def _view(store: SQLiteViewStore) -> dict[str, list[tuple[str, float]]]:
    keys = [all_time_key("movie")] + [day_key("movie", day) for day in range(19_675, 19_680)]
    return {key: await store.top(SPACE, {key: 1.0}, 0, 100) for key in keys}


def test_a_log_with_unique_ids_gives_the_guarded_view_without_guard_rows(tmp_path: Path) -> None:
    async def main() -> None:
        events = _events()
        projection = PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS))
        # The same facts sent twice each, as a retrying client would.
        unique_log = SQLiteEventLog(tmp_path / "log.db")
        redelivering_log = MemoryEventLog(partitions=1)
        for half in (events[:25], events[15:]):
            assert SQLiteEventLog.unique_event_ids and not MemoryEventLog.unique_event_ids
            await unique_log.append(half)
            await redelivering_log.append(half)
        unguarded = SQLiteViewStore(tmp_path / "unguarded.db")
        guarded = SQLiteViewStore(tmp_path / "guarded.db")
        await Projector(projection, unique_log, unguarded, batch_size=7).catch_up()
        await Projector(projection, redelivering_log, guarded, batch_size=7).catch_up()
        assert len((await redelivering_log.read("interactions", 0, 0, 1000)).events) == 50
        assert len((await unique_log.read("interactions", 0, 0, 1000)).events) == 40
        expected = await _view(guarded)
        assert expected[all_time_key("movie")], "the guarded view is empty: nothing was compared"
        assert await _view(unguarded) == expected
        [[unguarded_rows]] = unguarded._reader.execute("SELECT count(*) FROM guards").fetchall()
        [[guarded_rows]] = guarded._reader.execute("SELECT count(*) FROM guards").fetchall()
        assert unguarded_rows == 0 and guarded_rows == 40

    asyncio.run(main())
