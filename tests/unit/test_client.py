"""The Python client (movieaugur/client.py) against the real embedded server on a real socket.

Failures are real too: a small reverse proxy (an aiohttp server on 127.0.0.1) sits between the
client and the server and answers 503 or 429 instead of forwarding, 503 after forwarding (the
server appended the batch, the answer is lost), or drops the connection after forwarding."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from movieaugur.app import create_app
from movieaugur.bootstrap import Container
from movieaugur.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    ConnectionFailed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)
from tests.conftest import settle

NOW = int(time.time()) - 60
FAST = {"backoff": 0.01, "max_backoff": 0.05}  # retries without long sleeps (Retry-After still rules)


def events(count: int, with_ids: bool = False) -> list[dict[str, Any]]:
    made = [{"user_id": f"u{i % 500}", "item_id": f"m{i % 1000}", "item_type": "movie", "timestamp": NOW} for i in range(count)]
    if with_ids:
        for i, event in enumerate(made[::2]):
            event["event_id"] = f"given-{i}"
    return made


@asynccontextmanager
async def serving(container: Container) -> AsyncIterator[str]:
    """The whole embedded app (projectors included) on 127.0.0.1; yields its base URL."""
    async with TestServer(create_app(container)) as server:
        yield str(server.make_url("")).rstrip("/")


async def logged_ids(container: Container) -> list[str]:
    return [logged.event.event_id async for logged in container.log.scan("interactions")]


# -- the reverse proxy -------------------------------------------------------------------------

#: What the proxy does with one attempt at a batch: forward it, or fail it in one of these ways.
FORWARD, REFUSE_503, REFUSE_429, LOSE_503, DROP = "forward", "503 before", "429 before", "503 after", "drop after"


class Proxy:
    """Forwards every request to `upstream`. For `POST /v1/events`, `plan(batch, attempt)` (both
    from 0, batches numbered in the order first seen) decides how an attempt fails, and each
    attempt is recorded."""

    def __init__(self, upstream: str, plan: Callable[[int, int], str] = lambda batch, attempt: FORWARD,
                 retry_after: Callable[[int], str | None] = lambda batch: "0"):
        self.upstream = upstream
        self.plan = plan
        self.retry_after = retry_after
        self.batches: dict[str, int] = {}  # first event id of a batch -> its number
        self.attempts: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = FORWARD
        if request.method == "POST" and request.path == "/v1/events":
            elements = orjson.loads(body)
            batch = self.batches.setdefault(elements[0]["event_id"], len(self.batches))
            attempt = sum(1 for a in self.attempts if a["batch"] == batch)
            action = self.plan(batch, attempt)
            self.attempts.append({"batch": batch, "attempt": attempt, "elements": len(elements), "bytes": len(body),
                                  "first": elements[0]["event_id"], "action": action, "at": time.monotonic()})
        if action in (REFUSE_503, REFUSE_429):
            status = int(action[:3])
            headers = {"Retry-After": after} if (after := self.retry_after(self.batches[elements[0]["event_id"]])) else {}
            return web.json_response({"error": "simulated: not forwarded"}, status=status, headers=headers)
        headers = {k: v for k, v in request.headers.items() if k in ("Content-Type", "X-API-Key")}
        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as answer:
            raw, status = await answer.read(), answer.status
            content_type = answer.headers.get("Content-Type", "application/json")
        if action == LOSE_503:
            return web.json_response({"error": "simulated: forwarded, answer lost"}, status=503, headers={"Retry-After": "0"})
        if action == DROP:
            assert request.transport is not None
            request.transport.close()  # the client sees the connection end without an answer
            return web.Response(status=200)
        return web.Response(body=raw, status=status, headers={"Content-Type": content_type})


@asynccontextmanager
async def proxied(upstream: str, proxy: Proxy) -> AsyncIterator[str]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/")


# -- (a) batching ------------------------------------------------------------------------------


async def test_large_upload_is_split_and_appended_once(container: Container) -> None:
    upload = events(50_000, with_ids=True)
    async with serving(container) as url:
        proxy = Proxy(url)
        async with proxied(url, proxy) as via, AsyncClient(via) as client:
            result = await client.post_events(upload)
    # By count: the server's default batch limit (20,000) makes three batches, each sent once.
    assert [a["elements"] for a in proxy.attempts] == [20_000, 20_000, 10_000]
    assert all(a["bytes"] <= client.max_body_bytes for a in proxy.attempts)
    assert (result.appended, result.duplicates, result.batches, result.retries) == (50_000, 0, 3, 0)
    # Ids given by the caller are kept, the others are made; the caller's dicts are not changed.
    assert result.event_ids[0] == "given-0" and result.event_ids[2] == "given-1" and len(set(result.event_ids)) == 50_000
    assert "event_id" not in upload[1]
    ids = await logged_ids(container)
    assert len(ids) == 50_000 and set(ids) == set(result.event_ids)


async def test_batches_are_split_by_body_bytes_too(container: Container) -> None:
    upload = events(3_000)
    limit = 64 * 1024
    async with serving(container) as url:
        proxy = Proxy(url)
        async with proxied(url, proxy) as via, AsyncClient(via, max_body_bytes=limit) as client:
            result = await client.post_events(upload)
    sizes = [a["bytes"] for a in proxy.attempts]
    assert len(sizes) >= 4 and all(size <= limit for size in sizes) and sum(a["elements"] for a in proxy.attempts) == 3_000
    # Greedy: each batch but the last was full (the next batch's first element would not have fitted).
    index = {event_id: i for i, event_id in enumerate(result.event_ids)}
    for sent, following in zip(proxy.attempts, proxy.attempts[1:], strict=False):
        first = index[following["first"]]
        assert sent["bytes"] + 1 + len(orjson.dumps({**upload[first], "event_id": following["first"]})) > limit
    assert result.appended == 3_000


# -- (b) retries -------------------------------------------------------------------------------


async def test_retries_after_503_429_and_lost_answers_append_each_event_once(container: Container) -> None:
    failures = {1: [REFUSE_503], 3: [LOSE_503], 4: [REFUSE_429], 5: [DROP], 7: [REFUSE_503], 9: [LOSE_503, LOSE_503]}

    def plan(batch: int, attempt: int) -> str:
        return failures.get(batch, [])[attempt] if attempt < len(failures.get(batch, [])) else FORWARD

    proxy_retry_after = {1: "1", 4: None}  # batch 1 asks for one second; batch 4 says nothing: backoff
    async with serving(container) as url:
        proxy = Proxy(url, plan, retry_after=lambda batch: proxy_retry_after.get(batch, "0"))
        async with proxied(url, proxy) as via, AsyncClient(via, max_batch=5_000, **FAST) as client:
            result = await client.post_events(events(50_000))

    by_batch = Counter(a["batch"] for a in proxy.attempts)
    assert by_batch == {0: 1, 1: 2, 2: 1, 3: 2, 4: 2, 5: 2, 6: 1, 7: 2, 8: 1, 9: 3}
    first, second = [a["at"] for a in proxy.attempts if a["batch"] == 1]
    assert second - first >= 0.9, "Retry-After: 1 was not honoured"
    # Batches 3, 5 and 9 reached the server before their answer was lost: the retry is counted
    # as duplicates, not appended again, and the client says so.
    assert (result.batches, result.retries) == (10, 7)
    assert (result.appended, result.duplicates, result.duplicates_on_retry) == (35_000, 15_000, 15_000)
    assert result.recorded == 50_000
    ids = await logged_ids(container)
    assert len(ids) == 50_000, f"{len(ids) - len(set(ids))} duplicates in the log"
    assert set(ids) == set(result.event_ids)


async def test_gives_up_with_typed_errors(container: Container) -> None:
    async with serving(container) as url:
        proxy = Proxy(url, lambda batch, attempt: REFUSE_503)
        async with proxied(url, proxy) as via, AsyncClient(via, max_attempts=3, **FAST) as client:
            with pytest.raises(Unavailable) as unavailable:
                await client.post_events(events(10))
    assert unavailable.value.status == 503 and len(proxy.attempts) == 3
    assert unavailable.value.uploaded is not None and unavailable.value.uploaded.appended == 0

    with socket_closed() as port:
        async with AsyncClient(f"http://127.0.0.1:{port}", max_attempts=2, **FAST) as client:
            with pytest.raises(ConnectionFailed):
                await client.popularity("movie")


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port: int = self.socket.getsockname()[1]
        return port

    def __exit__(self, *_: object) -> None:
        self.socket.close()


# -- (c) reads ---------------------------------------------------------------------------------


async def test_reads_round_trip(container: Container) -> None:
    upload = [
        {"user_id": "u1", "item_id": "m1", "item_type": "movie", "action": "like", "timestamp": NOW},
        {"user_id": "u2", "item_id": "m1", "item_type": "movie", "timestamp": NOW},
        {"user_id": "u2", "item_id": "m2", "item_type": "movie", "action": "rating", "value": 4.0, "timestamp": NOW},
        {"user_id": "u3", "item_id": "s1", "item_type": "series", "timestamp": NOW},
    ]
    async with serving(container) as url:
        async with AsyncClient(url) as client:
            assert (await client.put_item("movie", "m1", title="Heat", categories=["Crime"])) == {"appended": 1, "duplicates": 0}
            items = await client.post_items([{"item_type": "movie", "item_id": "m2", "title": "Alien", "categories": ["Horror"]}])
            assert items.appended == 1
            assert (await client.post_events(upload)).appended == 4
            await settle(container)

            popular = await client.popularity("movie")
            assert [(i["id"], i["score"]) for i in popular["items"]] == [("m1", 4.0), ("m2", 1.0)]
            assert popular["items"][0]["title"] == "Heat"
            assert [i["id"] for i in (await client.popularity("movie", window="7d", limit=1, offset=1))["items"]] == ["m2"]
            assert [i["id"] for i in (await client.popularity("movie", category="horror"))["items"]] == ["m2"]

            cold = await client.recommendations("stranger", limit=5, item_type="movie", exclude=["movie:m2"])
            assert cold["fallback"] == "popularity" and [i["id"] for i in cold["items"]] == ["m1"]
            seen = await client.recommendations("u1")  # popularity without what u1 has seen
            assert "m1" not in [i["id"] for i in seen["items"]]

            history = await client.history("u2")
            assert history["user_id"] == "u2" and {i["id"] for i in history["items"]} == {"m1", "m2"}
            assert (await client.item("movie", "m1"))["popularity"] == 4.0
            assert await client.models() == [] and await client.item_types() == ["movie", "series"]
            with pytest.raises(NotFound):
                await client.similar("movie", "m1")

        # The blocking client, from another thread (this one runs the server's event loop).
        def blocking() -> tuple[list[str], str | None]:
            with Client(url) as sync:
                top = [i["id"] for i in sync.popularity("series")["items"]]
                return top, sync.recommendations("nobody")["fallback"]

        assert await asyncio.to_thread(blocking) == (["s1"], "popularity")


# -- (d) typed errors --------------------------------------------------------------------------


async def test_typed_errors(container: Container) -> None:
    good = events(3)
    bad = {"user_id": "u", "item_id": "m", "item_type": "movie", "action": "purchase"}
    async with serving(container) as url, AsyncClient(url, max_batch=2) as client:
        with pytest.raises(BadRequest) as invalid:
            await client.post_events([*good, bad])
        # The second batch (elements 2 and 3) failed: its index is counted in the whole upload.
        assert invalid.value.status == 400
        assert [(d["index"], d["field"]) for d in invalid.value.details] == [(3, "action")]
        assert "unknown action 'purchase'" in invalid.value.details[0]["message"]
        assert invalid.value.uploaded is not None and invalid.value.uploaded.appended == 2
        assert invalid.value.request_id

        fact = {"event_id": "e-1", "user_id": "u", "item_id": "m1", "item_type": "movie", "timestamp": NOW}
        assert (await client.post_events([fact])).appended == 1
        assert (await client.post_events([fact])).duplicates == 1  # the same fact again
        with pytest.raises(Conflict) as conflict:
            await client.post_events([{**fact, "item_id": "m2"}])
        assert (conflict.value.status, conflict.value.index, conflict.value.event_id) == (409, 0, "e-1")

        with pytest.raises(NotFound):
            await client.item("movie", "nothing-here")
        with pytest.raises(BadRequest) as query:
            await client.popularity("movie", window="forever")
        assert query.value.status == 400

    # Keys: a write without the key is refused; with it, accepted.
    container.settings = container.settings.model_copy(update={"api_keys": ("s3cret",)})
    async with serving(container) as url:
        async with AsyncClient(url) as anonymous:
            with pytest.raises(Unauthorized):
                await anonymous.post_events(events(1))
        async with AsyncClient(url, api_key="s3cret") as keyed:
            assert (await keyed.post_events(events(1))).appended == 1

    # A client whose body limit is above the server's gets the server's 413.
    container.settings = container.settings.model_copy(update={"api_keys": (), "max_batch": 10, "max_event_bytes": 256})
    huge = [{**event, "user_id": "x" * 2000} for event in events(10)]
    async with serving(container) as url, AsyncClient(url, max_batch=10) as client:
        with pytest.raises(PayloadTooLarge) as too_large:
            await client.post_events(huge)
        assert too_large.value.status == 413 and "split" in too_large.value.message
