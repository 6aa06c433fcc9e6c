"""Whole answers of the popularity routes are kept until a view changes (queries/answers.py): an
answer never outlives a commit of the popularity view or of the catalog, and the stores' revisions
move with every commit, also one made through another connection (another process)."""

from __future__ import annotations

import time
from pathlib import Path

from domain.events import InteractionRecorded, from_unix
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS, Settings
from movieaugur.adapters.memory_views import MemoryViewStore
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from projections.popularity import PopularityProjection
from projections.runner import Projector
from queries.service import QueryService
from tests.conftest import settle

NOW = int(time.time())
ROUTES = ("/popularity/movie", "/v1/popularity/movie", "/v1/popularity/movie?window=7d&limit=5")


def event(event_id: str, user: str, item: str, action: str = "view") -> dict:
    return {"event_id": event_id, "user_id": user, "item_id": item, "item_type": "movie", "action": action,
            "timestamp": NOW - 10}


def ids(body: object) -> list[str]:
    items = body if isinstance(body, list) else body["items"]  # type: ignore[index]
    return [item["id"] for item in items]


async def answers(client) -> dict[str, object]:  # type: ignore[no-untyped-def]
    out = {}
    for route in ROUTES:
        response = await client.get(route)
        assert response.status == 200, (route, await response.text())
        out[route] = await response.json()
    return out


async def test_popularity_answers_follow_every_commit(client, container) -> None:
    assert (await client.post("/v1/events", json=[event("1", "u1", "m1"), event("2", "u2", "m1"),
                                                  event("3", "u3", "m2")])).status == 200
    await settle(container)
    first = await answers(client)
    assert all(ids(body) == ["m1", "m2"] for body in first.values()), first
    assert await answers(client) == first  # kept, and the same

    # m2 overtakes m1: every route answers anew after the projector's commit
    assert (await client.post("/v1/events", json=[event("4", "u4", "m2", "like")])).status == 200
    await settle(container)
    second = await answers(client)
    assert all(ids(body) == ["m2", "m1"] for body in second.values()), second

    # a catalog change alone (the local catalog, another store) reaches the kept answers too
    assert (await client.put("/v1/items/movie/m2", json={"title": "Second Movie"})).status == 200
    await settle(container)
    third = await answers(client)
    assert all(next(i for i in (b if isinstance(b, list) else b["items"]) if i["id"] == "m2")["title"] == "Second Movie"
               for b in third.values()), third


async def test_an_unknown_type_is_a_404_every_time(client, container) -> None:
    for _ in range(2):  # errors are not kept
        assert (await client.get("/popularity/podcast")).status == 404
        assert (await client.get("/v1/popularity/podcast")).status == 404


async def test_store_revisions_move_with_commits_from_any_connection(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "log.db")
    reader = SQLiteViewStore(tmp_path / "views.db")  # the query side's store
    writer = SQLiteViewStore(tmp_path / "views.db")  # another connection to the file, as a projector process has
    memory = MemoryViewStore()
    try:
        projection = PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS))
        service = QueryService(reader, Settings(mode="embedded", data_dir=tmp_path), catalog=memory)
        before = await reader.revision(()), await memory.revision(())
        assert await service.revision(("popularity",)) == before  # what the kept answers are checked against
        assert (await reader.revision(()), await memory.revision(())) == before  # reads move nothing
        await log.append([InteractionRecorded.new(event_id="a", timestamp=from_unix(NOW), user_id="u",
                                                  item_type="movie", item_id="m")])
        for store in (writer, memory):
            await Projector(projection, log, store).catch_up()
        after = await reader.revision(()), await memory.revision(())
        assert after[0] != before[0] and after[1] != before[1]
        assert await service.revision(("popularity",)) == after
        await writer.drop(projection.name, projection.spaces)
        assert await reader.revision(()) != after[0]
    finally:
        for store in (reader, writer):
            await store.close()
        await log.close()
