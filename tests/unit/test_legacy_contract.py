"""Contract §1: the older `POST /events`, `GET /popularity/{type}` and
`GET /recommendations/{model}/users/{user}` served unchanged."""

from __future__ import annotations

import time

import orjson
import pytest

from domain.events import STREAMS
from tests.conftest import settle, wait_until

NOW = int(time.time())


def good(**overrides):  # type: ignore[no-untyped-def]
    return {"user_id": "u1", "item_id": "m1", "object_type": "movie", "timestamp": NOW - 60, **overrides}


def without(field: str) -> dict:
    element = good()
    del element[field]
    return element


# (name, body, element index named, field named, words in the message)
REJECTIONS = [
    ("missing user_id", [without("user_id")], 0, "user_id", "required"),
    ("missing item_id", [without("item_id")], 0, "item_id", "required"),
    ("missing object_type", [without("object_type")], 0, "object_type", "required"),
    ("missing timestamp", [without("timestamp")], 0, "timestamp", "required"),
    ("unknown field", [good(rating=5)], 0, "rating", "unknown field"),
    ("user_id is a number", [good(user_id=1)], 0, "user_id", "string"),
    ("item_id is a number", [good(item_id=7)], 0, "item_id", "string"),
    ("object_type is a number", [good(object_type=1)], 0, "object_type", "string"),
    ("timestamp is a string", [good(timestamp="0")], 0, "timestamp", "integer"),
    ("timestamp is a float", [good(timestamp=1.5)], 0, "timestamp", "integer"),
    ("timestamp is a boolean", [good(timestamp=True)], 0, "timestamp", "integer"),
    ("timestamp is null", [good(timestamp=None)], 0, "timestamp", "integer"),
    ("empty user_id", [good(user_id="")], 0, "user_id", "at least 1"),
    ("empty item_id", [good(item_id="")], 0, "item_id", "at least 1"),
    ("unknown object_type", [good(object_type="book")], 0, "object_type", "unknown item type 'book'"),
    ("future timestamp", [good(timestamp=NOW + 3600)], 0, "timestamp", "in the future"),
    ("bad element after good ones", [good(), good(item_id="m2"), good(object_type="podcast")], 2, "object_type", "unknown item type"),
    ("element is not an object", [good(), "view"], 1, None, "object"),
]


async def log_state(container) -> dict:  # type: ignore[no-untyped-def]
    return {stream: await container.log.end_offsets(stream) for stream in STREAMS}


@pytest.mark.parametrize(("name", "body", "index", "field", "words"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
async def test_each_rule_rejects_with_400_and_appends_nothing(client, container, name, body, index, field, words) -> None:
    await client.post("/events", json=[good(user_id="seed")])
    before = await log_state(container)
    response = await client.post("/events", data=orjson.dumps(body))
    assert response.status == 400, name
    payload = await response.json()
    assert words.lower() in payload["error"].lower()
    assert f"element {index}" in payload["error"]
    if field:
        assert f"field '{field}'" in payload["error"]
    assert payload["details"][0]["index"] == index
    assert await log_state(container) == before


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        ("empty array", b"[]", "at least 1"),
        ("not an array", orjson.dumps(good()), "array"),
        ("not JSON", b"[{\"user_id\": ", "not valid json"),
        ("empty body", b"", "not valid json"),
    ],
)
async def test_malformed_bodies_are_400(client, container, name, raw, words) -> None:
    before = await log_state(container)
    response = await client.post("/events", data=raw)
    assert response.status == 400, name
    assert words in (await response.json())["error"].lower()
    assert await log_state(container) == before


async def test_batch_limit_is_20000(client, container, settings) -> None:
    before = await log_state(container)
    too_many = [good(user_id=f"u{i}") for i in range(settings.max_batch + 1)]
    response = await client.post("/events", data=orjson.dumps(too_many))
    assert response.status == 400
    assert "at most 20000" in (await response.json())["error"]
    assert await log_state(container) == before

    exactly = too_many[:-1]
    response = await client.post("/events", data=orjson.dumps(exactly))
    assert response.status == 200
    assert (await response.json())["appended"] == settings.max_batch


async def test_small_clock_skew_is_allowed(client) -> None:
    response = await client.post("/events", json=[good(timestamp=int(time.time()) + 60)])
    assert response.status == 200


async def test_success_is_durable_and_retries_are_idempotent(client, container) -> None:
    body = [good(user_id="a"), good(user_id="b", item_id="m2")]
    first = await client.post("/events", json=body)
    assert first.status == 200 and (await first.json())["appended"] == 2
    retry = await client.post("/events", json=body)
    assert (await retry.json()) == {"appended": 0, "duplicates": 2}
    events = [logged.event async for logged in container.log.scan("interactions")]
    assert sorted((e.user_id, e.item_id) for e in events) == [("a", "m1"), ("b", "m2")]


async def test_posted_events_show_up_in_popularity(client) -> None:
    await client.put("/v1/items/movie/m2", json={"title": "Heat", "categories": ["Crime"], "release_date": "1995"})
    await client.post("/events", json=[good(user_id="a", item_id="m2"), good(user_id="b", item_id="m2"), good(user_id="a")])

    async def ranked():  # type: ignore[no-untyped-def]
        response = await client.get("/popularity/movie")
        if response.status != 200:
            return None
        items = await response.json()
        return items if len(items) == 2 and items[0].get("title") else None

    items = await wait_until(ranked)
    assert [item["id"] for item in items] == ["m2", "m1"]
    assert items[0] == {"id": "m2", "object_type": "movie", "title": "Heat", "release_date": "1995", "categories": ["Crime"], "score": 2.0}
    assert set(items[1]) == {"id", "object_type", "score"}  # unknown fields are omitted


async def test_popularity_404_when_nothing_known(client) -> None:
    assert (await client.get("/popularity/series")).status == 404
    assert (await client.get("/popularity/podcast")).status == 404


async def test_recommendations_fall_back_to_popularity_marked(client, container) -> None:
    await client.post("/events", json=[good(user_id="a", item_id="m1"), good(user_id="b", item_id="m2")])
    await settle(container)
    response = await client.get("/recommendations/default/users/newcomer")
    assert response.status == 200
    assert response.headers["X-Recommendation-Fallback"] == "popularity"
    assert {item["id"] for item in await response.json()} == {"m1", "m2"}
    # seen items are left out of the fallback too
    seen = await client.get("/recommendations/default/users/a")
    assert [item["id"] for item in await seen.json()] == ["m2"]


async def test_recommendations_404_for_unknown_model_or_nothing_known(client, container) -> None:
    assert (await client.get("/recommendations/default/users/anyone")).status == 404
    await client.post("/events", json=[good()])
    await settle(container)
    assert (await client.get("/recommendations/default/users/anyone")).status == 200
    assert (await client.get("/recommendations/no-such-model/users/u1")).status == 404
