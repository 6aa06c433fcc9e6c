"""The query side's model-version cache: the registry read (a scan where a Connect sink keeps it)
stays off the request path. A store whose listing takes as long as we say stands in for a busy
MongoDB-wire server; everything else is the real in-memory view store and projection."""

from __future__ import annotations

import asyncio

import pytest

from domain.events import ModelPublished, from_unix
from movieaugur.adapters.memory_views import MemoryViewStore
from projections.changes import Batch
from projections.recommendations import RecommendationsProjection
from queries.model_versions import ModelVersions


class SlowListing(MemoryViewStore):
    """Listing keys waits until the test opens the gate, and is counted."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.listings = 0

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        self.listings += 1
        await self.gate.wait()
        return await super().keys(space, prefix)


async def publish(store: MemoryViewStore, version: str, offset: int) -> None:
    event = ModelPublished.new(model="default", model_version=version, algorithm="als", params={}, metrics={},
                               timestamp=from_unix(1_700_000_000 + offset))
    effect = RecommendationsProjection().effect(event)
    await store.apply("recommendations", Batch(effects=[effect], next_offsets={"recommendations/0": offset + 1}))


async def test_first_requests_share_one_read_then_a_refresh_never_blocks_a_request() -> None:
    store = SlowListing()
    await publish(store, "v1", 0)
    versions = ModelVersions(store, ttl=0.0)  # every answer is stale at once: each request may refresh

    first = [asyncio.ensure_future(versions.version("default")) for _ in range(20)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in first)  # the very first answer has to be read
    store.gate.set()
    assert await asyncio.gather(*first) == ["v1"] * 20
    assert store.listings == 1  # twenty concurrent requests, one registry read

    await publish(store, "v2", 1)
    store.gate.clear()  # from now on the registry read hangs until the gate opens
    answered = await asyncio.wait_for(asyncio.gather(*(versions.version("default") for _ in range(20))), 1.0)
    assert answered == ["v1"] * 20  # at once, with the previous answer, while one refresh runs
    assert store.listings == 2
    store.gate.set()
    for _ in range(100):  # the refresh in flight finishes on its own; requests meanwhile stay instant
        if await versions.version("default") == "v2":
            break
        await asyncio.sleep(0.01)
    assert await versions.version("default") == "v2"


async def test_a_failed_refresh_keeps_the_previous_answer() -> None:
    store = SlowListing()
    store.gate.set()
    await publish(store, "v1", 0)
    versions = ModelVersions(store, ttl=0.0)
    assert await versions.version("default") == "v1"

    async def broken(space: str, prefix: str = "") -> list[str]:
        raise ConnectionError("store unreachable")

    store.keys = broken  # type: ignore[method-assign]
    for _ in range(5):
        assert await versions.version("default") == "v1"
        await asyncio.sleep(0.01)
    with pytest.raises(ConnectionError):  # nothing to fall back on: the first read's error is the answer
        await versions.version("another-model")
