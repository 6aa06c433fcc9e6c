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


async def test_queries_that_differ_only_in_their_encoding_do_not_share_an_answer(client, container) -> None:
    """`%26` is "&" and `%2526` is a literal "%26": the raw query string decodes both alike, so a
    key on it let one category's empty answer stand in for the other's."""
    assert (await client.put("/v1/items/movie/m1", json={"title": "One", "categories": ["Action & Adventure"]})).status == 200
    assert (await client.post("/v1/events", json=[event("1", "u1", "m1")])).status == 200
    await settle(container)
    for _ in range(2):  # the other spelling first, then the real one; twice, so the second read is a kept one
        literal = await client.get("/v1/popularity/movie?window=all&category=Action%20%2526%20Adventure")
        assert ids(await literal.json()) == []
        real = await client.get("/v1/popularity/movie?window=all&category=Action%20%26%20Adventure")
        assert ids(await real.json()) == ["m1"]
        same = await client.get("/v1/popularity/movie?category=Action+%26+Adventure&window=all")
        assert ids(await same.json()) == ["m1"]  # another spelling of the same query


async def test_kept_lists_are_kept_apart_by_every_parameter(tmp_path: Path) -> None:
    """One user's recommendation lists for other limits, types, exclusions and models are other
    answers; asked twice each, in turns, every answer is the same as a fresh service's."""
    from movieaugur.app import create_app
    from movieaugur.bootstrap import bootstrap
    from tests.conftest import serve
    from tests.unit.test_fresh_recommendations import trained

    container = await bootstrap(Settings(mode="embedded", data_dir=tmp_path / "state"))
    try:
        async with serve(create_app(container)) as client:
            await trained(container)
            queries = ["?limit=5", "?limit=3", "?limit=5&exclude=movie:a1,movie:a2", "?limit=5&item_type=movie",
                       "?limit=5&model=default", "?limit=12"]
            first = {}
            for query in queries:
                body = await (await client.get(f"/v1/users/ua1/recommendations{query}")).json()
                first[query] = ids(body)
            assert len(first["?limit=3"]) == 3 and len(first["?limit=5"]) == 5  # (cold slots differ by limit)
            assert len(first["?limit=12"]) == 12
            assert not {"a1", "a2"} & set(first["?limit=5&exclude=movie:a1,movie:a2"])
            for query in queries:  # again: kept answers, each its own
                assert ids(await (await client.get(f"/v1/users/ua1/recommendations{query}")).json()) == first[query], query
    finally:
        await container.close()


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


async def test_an_answer_that_read_what_its_revision_does_not_cover_is_not_kept() -> None:
    """Distributed, the published lists sit in the document store, which cannot tell a revision: a
    list taken from one is built again on every read, a fold-in list is kept."""
    from queries.answers import KeptAnswers

    built: list[str] = []

    def builder(answer: str):  # type: ignore[no-untyped-def]
        async def build() -> str:
            built.append(answer)
            return answer
        return build

    kept: KeptAnswers[str] = KeptAnswers(size=len, max_size=1000)
    for _ in range(3):
        assert await kept.get("from a published list", 1, builder("published"), keep=lambda a: a != "published") == "published"
        assert await kept.get("by fold-in", 1, builder("fold-in"), keep=lambda a: a != "published") == "fold-in"
    assert built == ["published", "fold-in", "published", "published"]
