"""Projector-written views in the MongoDB-protocol store (FerretDB here): no transactions, so the
exactly-once effect rests on idempotent updates; the replay property must still hold."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.testing import ensure_stack
from movieaugur.adapters.mongo_views import MongoViewStore
from projections.changes import Batch, DocPut, Effect, ScoreAdd, ScoreMax
from tests.unit.test_replay_property import STEPS, scenario

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def mongo_url() -> str:
    return ensure_stack().mongo_url


async def mongo_scenario(url: str, steps, first_batch: int) -> None:  # type: ignore[no-untyped-def]
    database = f"test_{uuid.uuid4().hex[:8]}"
    incremental = MongoViewStore(url, f"{database}_inc")
    replayed = MongoViewStore(url, f"{database}_rep")
    try:
        await scenario(steps, first_batch, incremental, replayed)
    finally:
        for store in (incremental, replayed):
            await store.client.drop_database(store.db.name)
            await store.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=STEPS, first_batch=st.integers(1, 7))
def test_mongo_replayed_view_equals_incremental_view(mongo_url, steps, first_batch) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(mongo_scenario(mongo_url, steps, first_batch))


def test_reapplying_a_batch_changes_nothing(mongo_url) -> None:  # type: ignore[no-untyped-def]
    """What a crash between a batch and its tracking write leads to: the same batch again."""

    async def check() -> None:
        store = MongoViewStore(mongo_url, f"test_{uuid.uuid4().hex[:8]}")
        try:
            batch = Batch(
                effects=[
                    Effect((ScoreAdd("matrix", "u1", "movie:m1", 3.0),), guard="e1"),
                    Effect((ScoreAdd("matrix", "u1", "movie:m1", 1.0),), guard="e2"),
                    Effect((ScoreAdd("matrix", "u1", "movie:m1", 3.0),), guard="e1"),  # a redelivery
                    Effect((ScoreMax("hist", "u1", "movie:m1", 7.0), DocPut("items", "movie:m1", {"title": "A"}))),
                ],
                next_offsets={"interactions/0": 4},
            )
            await store.apply("p", batch)
            first = await store.dump(["matrix", "hist", "items"])
            await store.apply("p", batch)
            assert await store.dump(["matrix", "hist", "items"]) == first
            assert await store.score("matrix", "u1", "movie:m1") == 4.0
            assert await store.top("matrix", {"u1": 1.0}, 0, 5) == [("movie:m1", 4.0)]
            assert await store.positions("p") == {"interactions/0": 4}
            assert await store.get_docs("items", ["movie:m1", "x"]) == [{"title": "A"}, None]
        finally:
            await store.client.drop_database(store.db.name)
            await store.close()

    asyncio.run(check())
