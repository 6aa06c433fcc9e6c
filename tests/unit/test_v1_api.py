"""The richer /v1 API: idempotent events, catalog writes, popularity windows, recommendations with
filters and fallbacks, history, similar items, models, docs and operations endpoints."""

from __future__ import annotations

import time

import pytest

from domain.events import ModelPublished, RecommendationsPublished, SimilarItemsPublished
from tests.conftest import settle

DAY = 86_400
NOW = int(time.time())


def event(event_id: str, user: str, item: str, item_type: str = "movie", **extra):  # type: ignore[no-untyped-def]
    return {"event_id": event_id, "user_id": user, "item_id": item, "item_type": item_type, "timestamp": NOW - 10, **extra}


async def test_event_ids_make_retries_idempotent(client, container) -> None:
    batch = [event("a", "u1", "m1", action="like"), event("b", "u2", "m1")]
    assert (await (await client.post("/v1/events", json=batch)).json()) == {"appended": 2, "duplicates": 0}
    assert (await (await client.post("/v1/events", json=batch)).json()) == {"appended": 0, "duplicates": 2}
    await settle(container)
    body = await (await client.get("/v1/popularity/movie")).json()
    assert body["items"][0]["score"] == 4.0  # like 3 + view 1, each once


@pytest.mark.parametrize(
    ("element", "field", "words"),
    [
        (event("x", "u", "m", action="purchase"), "action", "unknown action"),
        (event("x", "u", "m", action="rating"), "value", "needs a numeric 'value'"),
        (event("x", "u", "m", item_type="podcast"), "item_type", "unknown item type"),
        ({"user_id": "u", "item_id": "m", "item_type": "movie"}, "event_id", "required"),
        (event("x", "u", "m", timestamp=NOW + 10 * DAY), "timestamp", "future"),
    ],
)
async def test_v1_events_reject_with_field_and_index(client, element, field, words) -> None:
    response = await client.post("/v1/events", json=[event("ok", "u", "m"), element])
    assert response.status == 400
    message = (await response.json())["error"]
    assert f"element 1, field '{field}'" in message and words in message


async def test_negative_weights_lower_popularity(client, container) -> None:
    await client.post("/v1/events", json=[
        event("1", "u1", "m1"), event("2", "u2", "m1"), event("3", "u3", "m1", action="dislike"),
        event("4", "u1", "m2", action="rating", value=5.0),
    ])
    await settle(container)
    items = (await (await client.get("/v1/popularity/movie")).json())["items"]
    assert [(i["id"], i["score"]) for i in items] == [("m2", 2.0), ("m1", -1.0)]


async def test_popularity_windows_decay_and_category(client, container, settings) -> None:
    await client.post("/v1/items", json=[
        {"item_type": "movie", "item_id": "old", "title": "Old Hit", "categories": ["Drama"]},
        {"item_type": "movie", "item_id": "new", "title": "New Hit", "categories": ["Comedy"]},
    ])
    await client.post("/v1/events", json=[
        *[event(f"o{i}", f"u{i}", "old", timestamp=NOW - 20 * DAY) for i in range(5)],
        *[event(f"n{i}", f"u{i}", "new", timestamp=NOW - 1 * DAY) for i in range(2)],
    ])
    await settle(container)

    async def ranking(query: str) -> list[tuple[str, float]]:
        body = await (await client.get(f"/v1/popularity/movie?{query}")).json()
        return [(i["id"], i["score"]) for i in body["items"]]

    assert await ranking("window=all") == [("old", 5.0), ("new", 2.0)]
    assert await ranking(f"window=7d&at={NOW}") == [("new", pytest.approx(2 * 0.5 ** (1 / 7), rel=1e-4))]
    assert await ranking(f"window=7d&at={NOW}&decay=false") == [("new", 2.0)]
    thirty = await ranking(f"window=30d&at={NOW}")
    assert thirty[0][0] == "new"  # decay lets two recent views beat five old ones
    assert await ranking("category=drama") == [("old", 5.0)]
    assert await ranking("limit=1&offset=1") == [("new", 2.0)]
    assert (await client.get("/v1/popularity/movie?window=forever")).status == 400
    assert (await client.get("/v1/popularity/movie?limit=0")).status == 400


async def test_recommendations_filter_seen_and_excluded_and_name_the_model(client, container) -> None:
    await client.post("/v1/events", json=[event("1", "u1", "m1"), event("2", "u2", "m9")])
    items = [{"item_type": "movie", "item_id": i, "score": s} for i, s in (("m1", 0.9), ("m2", 0.8), ("m3", 0.7))]
    items.append({"item_type": "series", "item_id": "s1", "score": 0.6})
    await container.log.append([
        RecommendationsPublished.new(model="default", model_version="v7", user_id="u1", items=items),
        ModelPublished.new(model="default", model_version="v7", algorithm="als", params={}, metrics={}),
    ])
    await settle(container)
    body = await (await client.get("/v1/users/u1/recommendations?exclude=movie:m3")).json()
    assert body["model_version"] == "v7" and body["fallback"] is None
    assert [i["id"] for i in body["items"]] == ["m2", "s1"]  # m1 seen, m3 excluded
    series = await (await client.get("/v1/users/u1/recommendations?item_type=series")).json()
    assert [i["id"] for i in series["items"]] == ["s1"]
    cold = await (await client.get("/v1/users/nobody/recommendations")).json()
    assert cold["fallback"] == "popularity"
    assert (await client.get("/v1/users/u1/recommendations?model=nope")).status == 404
    models = await (await client.get("/v1/models")).json()
    assert [m["model_version"] for m in models["models"]] == ["v7"]
    assert (await (await client.get("/v1/models/default")).json())["algorithm"] == "als"


async def test_items_history_and_similar(client, container) -> None:
    put = await client.put("/v1/items/series/s1", json={"title": "Dark", "creators": ["Baran bo Odar"], "release_date": "2017-12-01"})
    assert put.status == 200
    bad = await client.put("/v1/items/series/s1", json={"title": 5})
    assert bad.status == 400 and "field 'title'" in (await bad.json())["error"]
    await client.post("/v1/events", json=[event("1", "u1", "s1", item_type="series", timestamp=NOW - 100), event("2", "u1", "m1", timestamp=NOW - 50)])
    await container.log.append([SimilarItemsPublished.new(
        model="default", model_version="v1", item_type="series", item_id="s1",
        items=[{"item_type": "movie", "item_id": "m1", "score": 0.5}],
    )])
    await settle(container)
    item = await (await client.get("/v1/items/series/s1")).json()
    assert item["title"] == "Dark" and item["popularity"] == 1.0
    history = await (await client.get("/v1/users/u1/history")).json()
    assert [(i["id"], i["last_interaction"]) for i in history["items"]] == [("m1", NOW - 50), ("s1", NOW - 100)]
    similar = await (await client.get("/v1/items/series/s1/similar")).json()
    assert [i["id"] for i in similar["items"]] == ["m1"]
    assert (await client.get("/v1/items/movie/unknown")).status == 404


async def test_api_keys_guard_every_write(container) -> None:
    from movieaugur.app import create_app
    from tests.conftest import serve

    legacy = [{"user_id": "u", "item_id": "m", "object_type": "movie", "timestamp": NOW}]
    container.settings = container.settings.model_copy(update={"api_keys": ("s3cret",)})
    async with serve(create_app(container)) as keyed:
        assert (await keyed.post("/v1/events", json=[event("1", "u", "m")])).status == 401
        assert (await keyed.post("/v1/events", json=[event("1", "u", "m")], headers={"X-API-Key": "s3cret"})).status == 200
        assert (await keyed.post("/events", json=legacy)).status == 401  # the older write route too
        assert (await keyed.post("/events", json=legacy, headers={"X-API-Key": "s3cret"})).status == 200
        assert (await keyed.put("/v1/items/movie/m", json={"title": "T"})).status == 401
        assert (await keyed.get("/v1/popularity/movie")).status == 200  # reads stay open without read keys

    # An explicit setting lets older clients that cannot send headers write without a key.
    container.settings = container.settings.model_copy(update={"legacy_writes_without_key": True})
    async with serve(create_app(container)) as keyed:
        later = [{**legacy[0], "timestamp": NOW - 1}]
        assert (await keyed.post("/events", json=later)).status == 200
        assert (await keyed.post("/v1/events", json=[event("2", "u", "m")])).status == 401

    # Read keys: reads need a read key (or a write key); health and docs stay open.
    container.settings = container.settings.model_copy(update={"read_api_keys": ("r3ad",)})
    async with serve(create_app(container)) as keyed:
        assert (await keyed.get("/v1/popularity/movie")).status == 401
        assert (await keyed.get("/v1/popularity/movie", headers={"X-API-Key": "r3ad"})).status == 200
        assert (await keyed.get("/v1/popularity/movie", headers={"X-API-Key": "s3cret"})).status == 200
        assert (await keyed.get("/healthz")).status == 200


async def test_operations_endpoints(client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["ready"] is True
    await client.post("/events", json=[{"user_id": "u", "item_id": "m", "object_type": "movie", "timestamp": NOW}])
    metrics = await (await client.get("/metrics")).text()
    assert 'movieaugur_http_requests_total{method="POST",route="/events",status="200"} 1.0' in metrics
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/events", "/popularity/{object_type}", "/recommendations/{model_name}/users/{user_id}",
                 "/v1/events", "/v1/popularity/{item_type}", "/v1/users/{user_id}/recommendations"):
        assert path in spec["paths"]
    docs = await client.get("/docs")
    assert docs.status == 200 and "/v1/events" in await docs.text()


async def test_projection_lag_is_exported_and_returns_to_zero(client, container) -> None:
    """The lag gauge, per projection and partition: it counts what a view has not applied yet and
    goes back to 0 once the projectors have caught up after a burst."""
    import re

    from tests.conftest import settle

    def lags(text: str) -> dict[tuple[str, str], float]:
        pattern = r'^movieaugur_projection_lag_events\{partition="([^"]+)",projection="([^"]+)"\} (\S+)$'
        return {(m[2], m[1]): float(m[3]) for m in re.finditer(pattern, text, re.M)}

    burst = [event(f"lag{n}", f"u{n % 7}", f"m{n % 11}") for n in range(3000)]
    for start in range(0, len(burst), 1000):
        assert (await client.post("/v1/events", json=burst[start : start + 1000])).status == 200
    await settle(container)
    after = lags(await (await client.get("/metrics")).text())
    assert ("popularity", "interactions/0") in after and ("local-catalog", "items/0") in after
    assert all(value == 0 for value in after.values()), after
    # While a projector is behind the gauge says by how much.
    for projector in container.projectors():
        await container.store.drop(projector.name, projector.projection.spaces)
    behind = lags(await (await client.get("/metrics")).text())
    assert behind[("history", "interactions/0")] >= 3000
    await settle(container, timeout=30)
    assert all(v == 0 for v in lags(await (await client.get("/metrics")).text()).values())
