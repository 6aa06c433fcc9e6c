"""New arrivals (newest first, by the time an item was first catalogued) and the notifications a new
title sends to the users whose history it suits, once each: also after a replay, after the title
is catalogued again, and when the notifier runs again over what it has seen."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from domain.events import NOTIFICATIONS, InteractionRecorded, ItemArrived, ItemCatalogued, UserNotified, from_unix
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.bootstrap import Container
from offline.arrival_notifier import NAME, ArrivalNotifier
from tests.conftest import settle, wait_until

NOW = int(time.time())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(mode="embedded", data_dir=tmp_path / "state", arrival_notify_users=2)


async def ok(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def notified(container: Container) -> None:
    """Wait until the app's notifier has reacted to everything in the log, then until every view
    has applied what it appended."""
    notifier = ArrivalNotifier(container.log, container.store, container.settings)  # reads the app's notifier's positions
    await wait_until(notifier.caught_up, timeout=15)
    await settle(container)


async def put(client: TestClient, item_id: str, *categories: str, item_type: str = "movie", **extra: Any) -> None:
    body = {"title": f"Title {item_id}", "categories": list(categories), **extra}
    await ok(await client.put(f"/v1/items/{item_type}/{item_id}", json=body))


async def arrivals(client: TestClient, query: str = "", item_type: str = "movie") -> list[str]:
    body = await ok(await client.get(f"/v1/new-arrivals/{item_type}{query}"))
    return [item["id"] for item in body["items"]]


async def test_new_arrivals_newest_first_filtered_by_category(client: TestClient, container: Container) -> None:
    for item_id, category in (("a", "Drama"), ("b", "Comedy"), ("c", "drama")):
        await put(client, item_id, category)
        await notified(container)  # each arrives in its own step, a moment after the previous one
    await put(client, "s1", "Drama", item_type="series")
    await notified(container)
    assert await arrivals(client) == ["c", "b", "a"]
    assert await arrivals(client, "?category=DRAMA") == ["c", "a"]
    assert await arrivals(client, "?category=Drama&limit=1&offset=1") == ["a"]
    assert await arrivals(client, "?limit=2&offset=1") == ["b", "a"]
    assert await arrivals(client, "?category=Western") == []
    assert await arrivals(client, item_type="series") == ["s1"]
    body = await ok(await client.get("/v1/new-arrivals/movie?limit=1"))
    [first] = body["items"]
    assert first["title"] == "Title c" and abs(first["arrived_at"] - time.time()) < 60
    arrived = {i["id"]: i["arrived_at"] for i in (await ok(await client.get("/v1/new-arrivals/movie")))["items"]}

    # Catalogued again (new metadata), "a" keeps its date and its place; "d" is new, so first.
    await put(client, "a", "Drama", description="Now with a description")
    await put(client, "d", "Western")
    await notified(container)
    assert await arrivals(client) == ["d", "c", "b", "a"]
    body = await ok(await client.get("/v1/new-arrivals/movie"))
    assert {i["id"]: i["arrived_at"] for i in body["items"] if i["id"] != "d"} == arrived
    assert body["items"][-1]["description"] == "Now with a description"  # metadata is the latest
    assert Counter(e.event.item_id for e in [x async for x in container.log.scan(NOTIFICATIONS)]
                   if isinstance(e.event, ItemArrived)) == {"a": 1, "b": 1, "c": 1, "d": 1, "s1": 1}

    # A replay dates every item as before.
    before = await ok(await client.get("/v1/new-arrivals/movie"))
    await operations.replay(container, ["arrivals"])
    assert await ok(await client.get("/v1/new-arrivals/movie")) == before

    assert (await client.get("/v1/new-arrivals/podcast")).status == 404
    assert (await client.get("/v1/new-arrivals/movie?limit=0")).status == 400
    assert (await client.get("/v1/new-arrivals/movie?sort=old")).status == 400


async def notices(client: TestClient, user: str) -> list[tuple[str, dict[str, Any]]]:
    body = await ok(await client.get(f"/v1/users/{user}/notifications"))
    return [(n["item"]["id"], n["reason"]) for n in body["notifications"]]


async def notified_about(container: Container, item_id: str) -> Counter[str]:
    return Counter([
        logged.event.user_id async for logged in container.log.scan(NOTIFICATIONS)
        if isinstance(logged.event, UserNotified) and logged.event.item_id == item_id
    ])


async def test_a_new_title_notifies_the_users_it_suits_best_once(client: TestClient, container: Container) -> None:
    for n in range(1, 5):
        await put(client, f"d{n}", "Drama", "Crime" if n == 1 else "Drama")
        await put(client, f"c{n}", "Comedy")
    await notified(container)  # these arrive before anyone has a history: nobody is told
    histories = {
        "fan": ["d1", "d2", "d3"],         # 3 dramas
        "casual": ["d4", "c1"],            # 1 drama
        "laughs": ["c1", "c2", "c3"],      # comedies only: never told about a drama
        "seen": ["d1", "d2", "d3", "d4", "new"],  # the most dramas, but already watched the new one
        "tied": ["d2"],                    # 1 drama, like "casual": the smaller user id wins the tie
    }
    await client.post("/v1/events", json=[
        {"event_id": f"{user}-{item}", "user_id": user, "item_id": item, "item_type": "movie", "timestamp": NOW - 600}
        for user, items in histories.items() for item in items
    ])
    await settle(container)
    assert [await notices(client, user) for user in histories] == [[]] * 5

    await put(client, "new", "Drama", "Crime")
    await notified(container)
    # Two users (MOVIEAUGUR_ARRIVAL_NOTIFY_USERS here): fan (3) and casual (1; "tied" has 1 too).
    assert await notices(client, "fan") == [("new", {"categories": ["Crime", "Drama"], "affinity": 4})]
    assert await notices(client, "casual") == [("new", {"categories": ["Drama"], "affinity": 1})]
    for user in ("laughs", "seen", "tied"):
        assert await notices(client, user) == []
    body = await ok(await client.get("/v1/users/fan/notifications"))
    [notice] = body["notifications"]
    assert notice["kind"] == "new_arrival" and notice["item"]["title"] == "Title new"
    assert abs(notice["notified_at"] - time.time()) < 60
    assert await notified_about(container, "new") == {"fan": 1, "casual": 1}
    answers = {user: await notices(client, user) for user in histories}
    logged = await container.log.end_offsets(NOTIFICATIONS)

    # Catalogued again with other metadata, after more history: not a new arrival, nobody is told again.
    await client.post("/v1/events", json=[
        {"event_id": f"tied-more-{n}", "user_id": "tied", "item_id": f"d{n}", "item_type": "movie", "timestamp": NOW - 60}
        for n in (1, 3, 4)
    ])
    await put(client, "new", "Drama", "Crime", description="A director's cut")
    await notified(container)
    assert await notified_about(container, "new") == {"fan": 1, "casual": 1}
    assert await container.log.end_offsets(NOTIFICATIONS) == logged

    # A replay of every view gives the same answers, and the notifier appends nothing for it.
    await operations.replay(container, operations.replayable(container))
    await notified(container)
    assert {user: await notices(client, user) for user in histories} == answers
    assert await container.log.end_offsets(NOTIFICATIONS) == logged

    # The notifier run again from the start of the log (its positions forgotten) appends nothing:
    # every item has arrived already, and every arrival has been announced.
    await container.store.drop(NAME, [])
    again = ArrivalNotifier(container.log, container.store, container.settings)
    assert await again.catch_up() > 0
    await settle(container)
    assert await container.log.end_offsets(NOTIFICATIONS) == logged
    assert {user: await notices(client, user) for user in histories} == answers


async def arrivals_logged(container: Container) -> dict[str, list[str] | None]:
    """item id -> the users its arrival names as told."""
    return {e.event.item_id: e.event.notified async for e in container.log.scan(NOTIFICATIONS) if isinstance(e.event, ItemArrived)}


async def test_old_uncategorised_and_unwanted_arrivals_tell_nobody(container: Container) -> None:
    """Run by hand (no app). Every arrival is recorded; only a recent one with categories, with
    users configured, tells anyone. Running the notifier again, with other settings, changes nothing."""
    await container.log.append([
        InteractionRecorded.new(event_id="h", timestamp=from_unix(NOW - 60), user_id="u1", item_type="movie", item_id="h1"),
        ItemCatalogued.new(item_type="movie", item_id="h1", categories=["Drama"]),
        ItemCatalogued.new(timestamp=from_unix(NOW - 30 * 86_400), item_type="movie", item_id="old", categories=["Drama"]),
        ItemCatalogued.new(item_type="movie", item_id="bare", title="No categories"),
        ItemCatalogued.new(item_type="movie", item_id="fresh", categories=["drama"]),
    ])
    await operations.catch_up(container)
    await ArrivalNotifier(container.log, container.store, container.settings).catch_up()
    assert await arrivals_logged(container) == {"h1": [], "old": [], "bare": [], "fresh": ["u1"]}

    silent = container.settings.model_copy(update={"arrival_notify_users": 0})
    await container.log.append([ItemCatalogued.new(item_type="movie", item_id="fresh2", categories=["Drama"])])
    await ArrivalNotifier(container.log, container.store, silent).catch_up()
    assert (await arrivals_logged(container))["fresh2"] == []

    logged = await container.log.end_offsets(NOTIFICATIONS)
    loud = container.settings.model_copy(update={"arrival_notify_max_age_days": 0})
    await container.store.drop(NAME, [])
    await operations.catch_up(container)
    assert await ArrivalNotifier(container.log, container.store, loud).catch_up() == 5
    assert await container.log.end_offsets(NOTIFICATIONS) == logged
    # Even without the arrivals view, a different decision about an arrived item is refused whole.
    await container.store.drop(NAME, [])
    await container.store.drop("arrivals", ["arrivals"])
    await ArrivalNotifier(container.log, container.store, loud).catch_up()
    assert await container.log.end_offsets(NOTIFICATIONS) == logged
