"""Users' named lists: add, remove, reorder and read them through the API, as events in the log,
rebuilt the same by replay, and their effect on recommendations (exclude, boost)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from domain.events import LISTS, ListItemAdded, RecommendationsPublished
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.adapters.memory_views import MemoryViewStore
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from movieaugur.app import create_app
from movieaugur.bootstrap import Container
from movieaugur.client import AsyncClient, NotFound
from projections.changes import Batch, Effect, ScoreAdd, ScoreMax, ScoreRemove, ViewStore
from tests.conftest import serve, settle

WATCHLIST = "/v1/users/u1/lists/watchlist"
NOW = int(time.time())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Two lists: the watchlist leaves its items out of recommendations, favourites bring theirs first."""
    return Settings(
        mode="embedded", data_dir=tmp_path / "state",
        lists=("watchlist", "favourites"), list_effects={"watchlist": "exclude", "favourites": "boost"},
    )


def ref(item_id: str, item_type: str = "movie") -> dict[str, str]:
    return {"item_type": item_type, "item_id": item_id}


async def catalog(client: TestClient, *ids: str) -> None:
    items = [{"item_type": "movie", "item_id": i, "title": f"Title {i}"} for i in ids]
    assert (await client.post("/v1/items", json=items)).status == 200


async def listed(client: TestClient, path: str = WATCHLIST) -> list[str]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert [item["position"] for item in body["items"]] == list(range(body["offset"], body["offset"] + len(body["items"])))
    return [item["id"] for item in body["items"]]


async def ok(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_add_remove_reorder_and_read_through_the_api(client: TestClient, container: Container) -> None:
    await catalog(client, "m1", "m2", "m3", "m4")
    for item in ("m1", "m2", "m3"):
        assert await ok(await client.post(WATCHLIST, json=ref(item))) == {"appended": 1, "duplicates": 0}
    await ok(await client.post(WATCHLIST, json=ref("m1")))  # already listed: it keeps its place
    await settle(container)
    body = await ok(await client.get(WATCHLIST))
    assert body["list"] == "watchlist" and body["effect"] == "exclude"
    assert [(i["id"], i["title"], i["position"]) for i in body["items"]] == [
        ("m1", "Title m1", 0), ("m2", "Title m2", 1), ("m3", "Title m3", 2)]
    assert all(abs(i["placed_at"] - time.time()) < 60 for i in body["items"])

    await ok(await client.delete(f"{WATCHLIST}/movie/m2"))
    await ok(await client.delete(f"{WATCHLIST}/movie/m404"))  # not on the list: changes nothing
    await settle(container)
    assert await listed(client) == ["m1", "m3"]

    # Added again after its removal, it goes to the end. A client event id tells this add from a
    # retry of the first one (without one, a repeat within the same second is taken as a retry).
    readd = {**ref("m2"), "event_id": "readd-m2"}
    assert await ok(await client.post(WATCHLIST, json=readd)) == {"appended": 1, "duplicates": 0}
    assert await ok(await client.post(WATCHLIST, json=readd)) == {"appended": 0, "duplicates": 1}
    await settle(container)
    assert await listed(client) == ["m1", "m3", "m2"]
    assert await listed(client, WATCHLIST + "?limit=2&offset=1") == ["m3", "m2"]

    # A reorder is the whole new list: m2 is not named, so it is off; a later add goes after.
    await ok(await client.put(WATCHLIST, json={"items": [ref("m3"), ref("m4"), ref("m1")]}))
    await ok(await client.post(WATCHLIST, json=ref("s1", "series")))
    await ok(await client.post(WATCHLIST, json=ref("m4")))  # listed already: stays second
    await ok(await client.post("/v1/users/u1/lists/favourites", json=ref("m2")))
    await settle(container)
    assert await listed(client) == ["m3", "m4", "m1", "s1"]
    lists = await ok(await client.get("/v1/users/u1/lists"))
    assert lists == {"user_id": "u1", "lists": [
        {"name": "watchlist", "count": 4, "effect": "exclude"}, {"name": "favourites", "count": 1, "effect": "boost"}]}
    assert (await ok(await client.get("/v1/users/u2/lists")))["lists"][0]["count"] == 0

    await ok(await client.put(WATCHLIST, json={"items": []}))
    await settle(container)
    assert await listed(client) == []
    # Every change is an event on the lists stream, keyed by the user.
    logged = [e.event async for e in container.log.scan(LISTS)]
    assert {type(e).__name__ for e in logged} == {"ListItemAdded", "ListItemRemoved", "ListReordered"}
    assert {e.key for e in logged} == {"u1"}


async def test_a_repeated_add_is_a_duplicate(client: TestClient, container: Container) -> None:
    """Without a client event id, the id is derived from the content and the second it arrived."""
    for _ in range(20):
        second = int(time.time())
        first = await ok(await client.post(WATCHLIST, json=ref("m9")))
        again = await ok(await client.post(WATCHLIST, json=ref("m9")))
        if int(time.time()) == second:  # both arrived in the same second
            break
    assert first == {"appended": 1, "duplicates": 0} or first == {"appended": 0, "duplicates": 1}
    assert again == {"appended": 0, "duplicates": 1}
    await settle(container)
    assert await listed(client) == ["m9"]


async def log_state(container: Container) -> dict[int, int]:
    return await container.log.end_offsets(LISTS)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/v1/users/u1/lists/wishlist", ref("m1"), 404, "no list 'wishlist'; configured lists: watchlist, favourites (MOVIEAUGUR_LISTS)"),
        ("put", "/v1/users/u1/lists/wishlist", {"items": []}, 404, "configured lists: watchlist, favourites"),
        ("delete", "/v1/users/u1/lists/wishlist/movie/m1", None, 404, "configured lists: watchlist, favourites"),
        ("post", WATCHLIST, ref("m1", "podcast"), 400, "field 'item_type': unknown item type 'podcast'"),
        ("post", WATCHLIST, {"item_type": "movie"}, 400, "field 'item_id': Field required"),
        ("post", WATCHLIST, {**ref("m1"), "rank": 1}, 400, "field 'rank': unknown field"),
        ("post", WATCHLIST, {**ref("m1"), "item_id": ""}, 400, "field 'item_id'"),
        ("post", WATCHLIST, [ref("m1")], 400, "Input should be an object"),
        ("put", WATCHLIST, {"items": [ref("m1"), ref("m2"), ref("m1")]}, 400, "field 'items': element 2 (movie 'm1') repeats element 0"),
        ("put", WATCHLIST, {"items": [ref(f"m{n}") for n in range(1001)]}, 400, "field 'items'"),
        ("put", WATCHLIST, {"items": [{"item_type": "movie"}]}, 400, "field 'items.0.item_id'"),
        ("put", WATCHLIST, [ref("m1")], 400, "Input should be an object"),
        ("delete", f"{WATCHLIST}/podcast/p1", None, 400, "field 'item_type': unknown item type 'podcast'"),
        ("delete", f"{WATCHLIST}/movie/m1?reason=x", None, 400, "query: field 'reason': unknown field"),
    ],
)
async def test_list_writes_are_validated_and_a_rejected_one_appends_nothing(
    client: TestClient, container: Container, method: str, path: str, body: Any, status: int, words: str
) -> None:
    before = await log_state(container)
    response = await (getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path))
    assert response.status == status, await response.text()
    assert words in (await response.json())["error"]
    assert await log_state(container) == before


async def test_list_reads_are_validated(client: TestClient) -> None:
    missing = await client.get("/v1/users/u1/lists/wishlist")
    assert missing.status == 404 and "configured lists: watchlist, favourites" in (await missing.json())["error"]
    assert (await client.get(WATCHLIST + "?limit=0")).status == 400
    assert (await client.get(WATCHLIST + "?sort=title")).status == 400
    assert (await client.get("/v1/users/u1/lists?x=1")).status == 400


async def test_list_writes_need_a_key_when_keys_are_set(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"api_keys": ("k",)})
    async with serve(create_app(container)) as keyed:
        for method, path, body in (("post", WATCHLIST, ref("m1")), ("put", WATCHLIST, {"items": []}),
                                   ("delete", f"{WATCHLIST}/movie/m1", None)):
            assert (await getattr(keyed, method)(path, json=body)).status == 401, (method, path)
            answer = await getattr(keyed, method)(path, json=body, headers={"X-API-Key": "k"})
            assert answer.status == 200, await answer.text()
        assert (await keyed.get(WATCHLIST)).status == 200  # reads stay open (no read keys)


async def test_lists_survive_a_replay(client: TestClient, container: Container) -> None:
    await catalog(client, "m1", "m2", "m3")
    await ok(await client.post(WATCHLIST, json=ref("m1")))
    await ok(await client.post(WATCHLIST, json=ref("m2")))
    await ok(await client.post("/v1/users/u2/lists/watchlist", json=ref("m3")))
    await ok(await client.put(WATCHLIST, json={"items": [ref("m2"), ref("m3"), ref("m1")]}))
    await ok(await client.delete(f"{WATCHLIST}/movie/m3"))
    await ok(await client.post("/v1/users/u2/lists/favourites", json=ref("m1")))
    await settle(container)
    paths = [WATCHLIST, "/v1/users/u2/lists/watchlist", "/v1/users/u2/lists/favourites", "/v1/users/u1/lists", "/v1/users/u2/lists"]
    before = [await ok(await client.get(p)) for p in paths]
    view = await container.store.dump(["lists"])
    assert await listed(client) == ["m2", "m1"]

    reports = await operations.replay(container, ["lists"])
    assert reports[0].events == 6
    assert await container.store.dump(["lists"]) == view
    assert [await ok(await client.get(p)) for p in paths] == before


async def publish(container: Container, user: str, *item_ids: str) -> None:
    items = [{"item_type": "movie", "item_id": i, "score": 1.0 - n / 100} for n, i in enumerate(item_ids)]
    await container.log.append([RecommendationsPublished.new(model="default", model_version="v1", user_id=user, items=items)])


async def recommended(client: TestClient, user: str, query: str = "") -> tuple[list[str], str | None]:
    body = await ok(await client.get(f"/v1/users/{user}/recommendations{query}"))
    return [item["id"] for item in body["items"]], body["fallback"]


async def test_lists_shape_recommendations_as_configured(client: TestClient, container: Container) -> None:
    await catalog(client, *(f"m{n}" for n in range(1, 8)))
    await publish(container, "u1", "m1", "m2", "m3", "m4", "m5")
    await settle(container)
    assert await recommended(client, "u1") == (["m1", "m2", "m3", "m4", "m5"], None)

    # exclude: watchlisted items are left out, as seen items are.
    await ok(await client.post(WATCHLIST, json=ref("m2")))
    await ok(await client.post(WATCHLIST, json=ref("m7")))
    # boost: favourites the model ranked come first, in the model's order; m6 it did not rank
    # stays out; m2 is also on the watchlist, and exclusion wins.
    for item in ("m6", "m5", "m2", "m3"):
        await ok(await client.post("/v1/users/u1/lists/favourites", json=ref(item)))
    await settle(container)
    assert await recommended(client, "u1") == (["m3", "m5", "m1", "m4"], None)
    assert await recommended(client, "u1", "?limit=2") == (["m3", "m5"], None)
    # The older route answers from the same service.
    legacy = await ok(await client.get("/recommendations/default/users/u1?limit=3"))
    assert [item["id"] for item in legacy] == ["m3", "m5", "m1"]

    # The popularity fallback for a user the model has nothing for: the same two rules.
    await client.post("/v1/events", json=[
        {"event_id": f"p{n}-{u}", "user_id": f"fan{u}", "item_id": f"m{n}", "item_type": "movie", "timestamp": NOW - 60}
        for n in range(1, 6) for u in range(n)
    ])  # popularity: m5 > m4 > m3 > m2 > m1
    await ok(await client.post("/v1/users/u9/lists/watchlist", json=ref("m4")))
    await ok(await client.post("/v1/users/u9/lists/favourites", json=ref("m1")))
    await settle(container)
    assert await recommended(client, "u9", "?item_type=movie") == (["m1", "m5", "m3", "m2"], "popularity")

    # Taken off the lists, the items come back where the model put them.
    await ok(await client.put("/v1/users/u1/lists/favourites", json={"items": []}))
    await ok(await client.delete(f"{WATCHLIST}/movie/m2"))
    await settle(container)
    assert await recommended(client, "u1") == (["m1", "m2", "m3", "m4", "m5"], None)


@pytest.mark.parametrize("make", [lambda _: MemoryViewStore(), lambda folder: SQLiteViewStore(folder / "views.sqlite")],
                         ids=["memory", "sqlite"])
async def test_score_remove_in_the_stores(tmp_path: Path, make: Any) -> None:
    """The change type that removal needs: one member, or the whole sorted set; idempotent."""
    store: ViewStore = make(tmp_path)
    try:
        batch = Batch(effects=[
            Effect((ScoreMax("s", "k", "a", 3.0), ScoreMax("s", "k", "b", 2.0), ScoreMax("s", "j", "c", 1.0))),
            Effect((ScoreRemove("s", "k", "a"), ScoreRemove("s", "k", "zz"))),
            Effect((ScoreRemove("s", "j"), ScoreMax("s", "j", "d", 5.0))),
        ], next_offsets={"lists/0": 3})
        await store.apply("p", batch)
        assert await store.top("s", {"k": 1.0}, 0, 10) == [("b", 2.0)]
        assert await store.top("s", {"j": 1.0}, 0, 10) == [("d", 5.0)]
        await store.apply("p", Batch(effects=[Effect((ScoreRemove("s", "k", "b"),))], next_offsets={"lists/0": 4}))
        assert await store.keys("s") == ["j"]  # a sorted set that lost its last member is gone
        assert (await store.dump(["s"]))["s"]["zsets"] == {"j": {"d": 5.0}}
    finally:
        await store.close()


def test_list_added_event_is_keyed_by_user() -> None:
    event = ListItemAdded.new(user_id="u1", list_name="watchlist", item_type="movie", item_id="m1")
    assert event.stream == LISTS and event.key == "u1" and event.item_key == "movie:m1"


async def test_the_python_client_speaks_these_routes(client: TestClient, container: Container) -> None:
    async with AsyncClient(f"http://{client.host}:{client.port}") as api:
        assert await api.add_to_list("u1", "watchlist", "movie", "m1") == {"appended": 1, "duplicates": 0}
        assert await api.add_to_list("u1", "watchlist", "movie", "m2", event_id="e-m2") == {"appended": 1, "duplicates": 0}
        assert await api.add_to_list("u1", "watchlist", "movie", "m2", event_id="e-m2") == {"appended": 0, "duplicates": 1}
        await api.add_to_list("u1", "watchlist", "movie", "m3")
        await api.remove_from_list("u1", "watchlist", "movie", "m1")
        await settle(container)
        assert [i["id"] for i in (await api.lists("u1", "watchlist"))["items"]] == ["m2", "m3"]
        await api.reorder_list("u1", "watchlist", [("movie", "m3"), ("series", "s1"), ("movie", "m2")])
        await settle(container)
        assert [i["id"] for i in (await api.lists("u1", "watchlist", limit=2, offset=1))["items"]] == ["s1", "m2"]
        assert (await api.lists("u1"))["lists"][0] == {"name": "watchlist", "count": 3, "effect": "exclude"}
        with pytest.raises(NotFound, match="configured lists"):
            await api.add_to_list("u1", "wishlist", "movie", "m1")


@pytest.mark.parametrize("make", [lambda _: MemoryViewStore(), lambda folder: SQLiteViewStore(folder / "views.sqlite")],
                         ids=["memory", "sqlite"])
async def test_a_guard_marks_copies_within_its_horizon_and_no_later(tmp_path: Path, make: Any) -> None:
    """An event id counts once; a copy exactly `horizon` offsets later is still a duplicate, one
    offset further counts again, and then guards the copies after it (also within one batch)."""
    store: ViewStore = make(tmp_path)

    def counted(at: int) -> Effect:
        return Effect((ScoreAdd("s", "k", "m", 1.0),), guard="g", at=at)

    try:
        await store.apply("p", Batch(effects=[counted(10)], next_offsets={"interactions/0": 11}, horizon=3))
        await store.apply("p", Batch(effects=[counted(13), counted(14), counted(15), counted(17)],
                                     next_offsets={"interactions/0": 18}, horizon=3))
        assert await store.score("s", "k", "m") == 2.0  # 10 and 14: 13 is 3 after 10, 15 and 17 within 3 of 14
        await store.apply("p", Batch(effects=[counted(18)], next_offsets={"interactions/0": 19}, horizon=3))
        assert await store.score("s", "k", "m") == 3.0  # 4 after 14
    finally:
        await store.close()
