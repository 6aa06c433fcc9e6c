"""The Redis view store against a real Redis: the same replay property as the SQLite store, and the
same answers to the same queries (projection logic written once, storage chosen by configuration)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.testing import ensure_stack
from movieaugur.adapters.redis_views import RedisViewStore
from projections.changes import Batch, DocPut, Effect, ScoreAdd, ScoreMax, StaleTracking
from tests.unit.test_replay_property import HORIZONS, STEPS, scenario

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def redis_url() -> str:
    return ensure_stack().redis_url


async def redis_scenario(url: str, steps, first_batch: int, horizon: int) -> None:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    incremental = RedisViewStore(url, prefix=f"test:{run}:inc:")
    replayed = RedisViewStore(url, prefix=f"test:{run}:rep:")
    try:
        await scenario(steps, first_batch, incremental, replayed, horizon)
    finally:
        for store in (incremental, replayed):
            async for key in store.redis.scan_iter(match=f"{store.prefix}*"):
                await store.redis.delete(key)
            await store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=STEPS, first_batch=st.integers(1, 7), horizon=HORIZONS)
def test_redis_replayed_view_equals_incremental_view(redis_url, steps, first_batch, horizon) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(redis_scenario(redis_url, steps, first_batch, horizon))


def test_redis_store_semantics(redis_url) -> None:  # type: ignore[no-untyped-def]
    async def check() -> None:
        store = RedisViewStore(redis_url, prefix=f"test:{uuid.uuid4().hex[:8]}:")
        try:
            batch = Batch(
                effects=[
                    Effect((ScoreAdd("pop", "movie:all", "m1", 2.0), ScoreAdd("pop", "movie:d1", "m1", 2.0)), guard="e1"),
                    Effect((ScoreAdd("pop", "movie:all", "m1", 2.0),), guard="e1"),  # a retry: no effect
                    Effect((ScoreAdd("pop", "movie:all", "m2", 1.0), ScoreMax("hist", "u1", "movie:m2", 5.0))),
                    Effect((ScoreMax("hist", "u1", "movie:m2", 3.0), DocPut("items", "movie:m1", {"title": "A"}))),
                ],
                next_offsets={"interactions/0": 4},
            )
            await store.apply("p", batch)
            assert await store.positions("p") == {"interactions/0": 4}
            assert await store.top("pop", {"movie:all": 1.0}, 0, 10) == [("m1", 2.0), ("m2", 1.0)]
            assert await store.top("pop", {"movie:all": 0.5, "movie:d1": 1.0}, 0, 10) == [("m1", 3.0), ("m2", 0.5)]
            assert await store.score("hist", "u1", "movie:m2") == 5.0
            assert await store.get_docs("items", ["movie:m1", "nope"]) == [{"title": "A"}, None]
            assert await store.keys("pop", "movie:d") == ["movie:d1"]
            with pytest.raises(StaleTracking):
                await store.apply("p", Batch([Effect((ScoreAdd("pop", "movie:all", "m9", 1.0),))], {"interactions/0": 4}))
            assert await store.score("pop", "movie:all", "m9") is None  # nothing of a stale batch
            await store.drop("p", ["pop", "hist", "items"])
            assert await store.positions("p") == {} and await store.dump(["pop", "hist", "items"]) == {
                "pop": {"zsets": {}, "docs": {}}, "hist": {"zsets": {}, "docs": {}}, "items": {"zsets": {}, "docs": {}}}
        finally:
            await store.close()

    asyncio.run(check())


def test_replay_rebuilds_a_shadow_and_swaps_atomically(redis_url) -> None:  # type: ignore[no-untyped-def]
    from domain.events import InteractionRecorded, from_unix
    from domain.weights import ActionWeights
    from kernel.settings import DEFAULT_ACTION_WEIGHTS
    from movieaugur.adapters.memory_log import MemoryEventLog
    from projections.popularity import PopularityProjection
    from projections.runner import Projector

    async def check() -> None:
        store = RedisViewStore(redis_url, prefix=f"test:{uuid.uuid4().hex[:8]}:")
        log = MemoryEventLog(partitions=2)
        projection = PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS))
        try:
            await log.append([InteractionRecorded.new(event_id=f"e{i}", timestamp=from_unix(86_400 * (i % 3)), user_id=f"u{i}",
                                                      item_type="movie", item_id=f"m{i % 5}") for i in range(40)])
            live = Projector(projection, log, store, batch_size=7)
            await live.catch_up()
            before = await store.dump(projection.spaces)
            # Corrupt the live view: a replay must not keep anything of it.
            await store.redis.zadd(store._z("popularity", "movie:all"), {"bogus": 99.0})
            report = await live.replay()
            assert report.events == 40
            assert await store.dump(projection.spaces) == before
            ends = await log.end_offsets("interactions")
            assert await store.positions(projection.name) == {f"interactions/{p}": end for p, end in ends.items() if end}
            leftovers = [k async for k in store.redis.scan_iter(match=f"{store.prefix}shadow:*")]
            assert leftovers == []
        finally:
            async for key in store.redis.scan_iter(match=f"{store.prefix}*"):
                await store.redis.delete(key)
            await store.close()

    asyncio.run(check())


def test_a_projector_that_followed_past_a_replay_resumes_where_the_rebuilt_view_ends(redis_url) -> None:  # type: ignore[no-untyped-def]
    """A replay rebuilds up to where the log ended when it began, while the live projector (another
    process) keeps applying new events to the live view. The swap then puts the live view back to
    the rebuilt positions, behind the positions that projector holds. Its next batch must be
    refused (it starts past the tracking), not applied over the gap: the events in between were
    counted only in the view the swap discarded."""
    from domain.events import InteractionRecorded, from_unix
    from domain.weights import ActionWeights
    from kernel.settings import DEFAULT_ACTION_WEIGHTS
    from movieaugur.adapters.memory_log import MemoryEventLog
    from projections.popularity import PopularityProjection
    from projections.runner import Projector

    def events(first: int, count: int) -> list[InteractionRecorded]:
        return [InteractionRecorded.new(event_id=f"e{i}", timestamp=from_unix(86_400 * (i % 3)), user_id=f"u{i}",
                                        item_type="movie", item_id=f"m{i % 5}") for i in range(first, first + count)]

    async def check() -> None:
        run = uuid.uuid4().hex[:8]
        store = RedisViewStore(redis_url, prefix=f"test:{run}:live:")
        fresh = RedisViewStore(redis_url, prefix=f"test:{run}:fresh:")
        log = MemoryEventLog(partitions=2)
        projection = PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS))
        try:
            await log.append(events(0, 40))
            live = Projector(projection, log, store, batch_size=7)
            await live.catch_up()
            # The replay's steps (Projector.replay), with the live projector running in between.
            shadow = store.shadow(projection.name)
            assert shadow is not None
            await Projector(projection, log, shadow, batch_size=7).catch_up()
            await log.append(events(40, 20))
            # The live view (about to be swapped out) gets events 40-59 in one step; a projector
            # under steady ingest is never idle, so it keeps the positions it holds (Projector.step).
            assert await live.step() == 20 and live.advanced
            await store.promote(projection.name, projection.spaces, shadow)
            await log.append(events(60, 20))
            await live.step()
            await live.catch_up()
            assert await live.caught_up()

            await Projector(projection, log, fresh, batch_size=7).catch_up()
            assert await store.dump(projection.spaces) == await fresh.dump(projection.spaces)
            assert await store.positions(projection.name) == await fresh.positions(projection.name)
        finally:
            for each in (store, fresh):
                async for key in each.redis.scan_iter(match=f"{each.prefix}*"):
                    await each.redis.delete(key)
                await each.close()

    asyncio.run(check())


def test_the_revision_moves_with_every_commit_and_never_returns_after_a_loss(redis_url) -> None:  # type: ignore[no-untyped-def]
    """ViewStore.revision against a real Redis: None before any apply (nothing may be kept), moved by
    apply, drop and a replay's promote; after the keys are lost it is None again, and the first apply
    after that starts a new epoch above every value it had before (a kept answer is never matched
    again). A commit of another view's spaces leaves it where it was."""
    from domain.events import InteractionRecorded, from_unix
    from domain.weights import ActionWeights
    from kernel.settings import DEFAULT_ACTION_WEIGHTS
    from movieaugur.adapters.memory_log import MemoryEventLog
    from projections.history import HistoryProjection
    from projections.popularity import PopularityProjection
    from projections.runner import Projector

    async def check() -> None:
        store = RedisViewStore(redis_url, prefix=f"test:{uuid.uuid4().hex[:8]}:", revision_recheck=0.0)
        # a query process reads the counter at most every `revision_recheck` seconds
        lagging = RedisViewStore(redis_url, prefix=store.prefix, client=store.redis, revision_recheck=3600.0)
        log = MemoryEventLog(partitions=1)
        projection = PopularityProjection(ActionWeights(DEFAULT_ACTION_WEIGHTS))
        projector = Projector(projection, log, store, batch_size=5)

        async def append(n: int) -> None:
            await log.append([InteractionRecorded.new(event_id=f"e{n}", timestamp=from_unix(86_400), user_id="u",
                                                      item_type="movie", item_id="m1")])

        try:
            assert await store.revision(("popularity",)) is None
            seen = []
            for n in range(3):
                await append(n)
                await projector.catch_up()
                seen.append(await store.revision(("popularity",)))
            assert None not in seen and seen == sorted(set(seen)), seen
            assert await lagging.revision(("popularity",)) == seen[-1]
            await append(3)
            await projector.catch_up()
            assert await lagging.revision(("popularity",)) == seen[-1]  # not read again within the hour
            seen.append(await store.revision(("popularity",)))
            assert seen[-1] > seen[-2]
            assert await store.revision(("popularity",)) == seen[-1]  # reads move nothing
            history = await store.revision(("history",))
            await Projector(HistoryProjection(), log, store, batch_size=5).catch_up()  # another view commits
            assert await store.revision(("history",)) != history
            assert await store.revision(("popularity",)) == seen[-1]
            # A mixed deploy: a projector of an earlier version moves the one counter it knows...
            await store.redis.set(f"{store.prefix}revision", 10**15)
            assert await store.revision(("popularity",)) != seen[-1]
            # ...which this version's next commit, of any view, deletes: never back to a seen value.
            await store.drop("history", ("history",))
            assert await store.revision(("popularity",)) not in (seen[-1], None)
            seen.append(await store.revision(("popularity",)))
            await projector.replay()  # rebuilt in a shadow, then promoted
            seen.append(await store.revision(("popularity",)))
            await store.drop(projection.name, projection.spaces)
            seen.append(await store.revision(("popularity",)))
            assert seen == sorted(set(seen)), seen
            async for key in store.redis.scan_iter(match=f"{store.prefix}*"):  # the keys are lost (a flush)
                await store.redis.delete(key)
            assert await store.revision(("popularity",)) is None
            await append(9)
            await projector.catch_up()
            again = await store.revision(("popularity",))
            assert again is not None and again[1] > max(epoch for _, epoch, _ in seen)
        finally:
            async for key in store.redis.scan_iter(match=f"{store.prefix}*"):
                await store.redis.delete(key)
            await store.close()

    asyncio.run(check())
