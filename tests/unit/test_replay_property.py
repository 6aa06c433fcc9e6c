"""Principle 1 as a property: for any sequence of events (with retried event ids) and any points at
which projectors are stopped and restarted, the view built incrementally equals the view rebuilt by
replay, and popularity counts every event id exactly once."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.events import (
    INTERACTIONS,
    InteractionRecorded,
    ItemArrived,
    ItemCatalogued,
    ListItemAdded,
    ListItemRemoved,
    ListReordered,
    MovieAugurEvent,
    RecommendationsPublished,
    RecommendationsServed,
    UserNotified,
    from_unix,
)
from domain.weights import ActionWeights
from kernel.experiments import attribution
from kernel.settings import DEFAULT_ACTION_WEIGHTS
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.sqlite_views import SQLiteViewStore
from projections.registry import build_projections
from projections.runner import Projector

WEIGHTS = ActionWeights(DEFAULT_ACTION_WEIGHTS)
USERS = ["u1", "u2", "u3", "u4"]
ITEMS = [("movie", "m1"), ("movie", "m2"), ("series", "s1"), ("movie", "m3")]

ACTIONS = ["view", "like", "dislike", "rating", "click", "watchlist"]


def interaction_number(n: int) -> InteractionRecorded:
    """Event n always has the same content: drawing n twice is a retry of the same event."""
    return InteractionRecorded.new(
        event_id=f"e{n}",
        timestamp=from_unix(1_700_000_000 + (n % 4) * 86_400 + n),
        user_id=USERS[n % len(USERS)],
        item_type=ITEMS[(n // 4) % len(ITEMS)][0],
        item_id=ITEMS[(n // 4) % len(ITEMS)][1],
        action=ACTIONS[n % len(ACTIONS)],
        value=[0.5, 2.0, 3.0, 4.5, 5.0][n % 5] if ACTIONS[n % len(ACTIONS)] == "rating" else None,
        # every third one sent back with the id of a list served in an A/B experiment (or outside one)
        **({"recommendation_id": f"home.{'ab'[n % 2]}.t{n}" if n % 9 else f"t{n}"} if n % 3 == 0 else {}),
    )


def exposure_number(n: int) -> RecommendationsServed:
    """A flush's lists served in variants a and b (the experiments view's exposures)."""
    served = [{"recommendation_id": f"home.{'ab'[k % 2]}.x{n}-{k}", "user_id": USERS[k % len(USERS)], "experiment": "home",
               "variant": "ab"[k % 2], "model": "default", "items": [f"{t}:{i}" for t, i in ITEMS[: (n + k) % 4]]}
              for k in range(n % 3 + 1)]
    return RecommendationsServed.new(event_id=f"x{n}", timestamp=from_unix(1_700_000_000 + n), served=served)


interaction = st.integers(0, 40).map(interaction_number)  # a small id space: ids come back
catalogued = st.builds(
    lambda item, title: ItemCatalogued.new(item_type=item[0], item_id=item[1], title=title),
    item=st.sampled_from(ITEMS),
    title=st.sampled_from(["A", "B", "C"]),
)
published = st.builds(
    lambda user, version, items: RecommendationsPublished.new(
        model="default", model_version=version, user_id=user,
        items=[{"item_type": t, "item_id": i, "score": 1.0} for t, i in items],
    ),
    user=st.sampled_from(USERS),
    version=st.sampled_from(["v1", "v2"]),
    items=st.lists(st.sampled_from(ITEMS), max_size=3),
)


def list_event_number(n: int) -> MovieAugurEvent:
    """List edit n always has the same content and time (drawing n twice is a retry): adds,
    removals (ScoreRemove of a member) and reorders (ScoreRemove of the whole list, then places)."""
    user, name = USERS[n % 2], ("watchlist", "favourites")[n // 2 % 2]
    item_type, item_id = ITEMS[n % len(ITEMS)]
    at = from_unix(1_700_000_000 + n * 7.5)
    if n % 3 == 0:
        return ListItemAdded.new(event_id=f"l{n}", timestamp=at, user_id=user, list_name=name, item_type=item_type, item_id=item_id)
    if n % 3 == 1:
        return ListItemRemoved.new(event_id=f"l{n}", timestamp=at, user_id=user, list_name=name, item_type=item_type, item_id=item_id)
    order = [{"item_type": t, "item_id": i} for t, i in (ITEMS[n % 4 :] + ITEMS[: n % 4])[: n % 4]]
    return ListReordered.new(event_id=f"l{n}", timestamp=at, user_id=user, list_name=name, items=order)


def notice_number(n: int) -> MovieAugurEvent:
    """An arrival (first-seen dates under ScoreMax) or a user's notification."""
    item_type, item_id = ITEMS[n % len(ITEMS)]
    if n % 2:
        return ItemArrived.new(event_id=f"a{n}", timestamp=from_unix(1_700_000_000 + n), item_type=item_type, item_id=item_id)
    return UserNotified.new(event_id=f"n{n}", timestamp=from_unix(1_700_000_000 + n), user_id=USERS[n % len(USERS)],
                            kind="new_arrival", item_type=item_type, item_id=item_id, reason={"affinity": n})


list_edit = st.integers(0, 30).map(list_event_number)
notice = st.integers(0, 12).map(notice_number)
exposure = st.integers(0, 20).map(exposure_number)
event = st.one_of(interaction, interaction, interaction, catalogued, published, list_edit, list_edit, notice, exposure)
STEPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(event, min_size=1, max_size=6)),
    st.tuples(st.just("project"), st.integers(1, 3)),
    st.tuples(st.just("restart"), st.integers(1, 7)),  # a new projector process, new batch size
), min_size=1, max_size=25)


async def scenario(steps, first_batch: int, incremental, replayed, horizon: int = 1_000_000) -> None:  # type: ignore[no-untyped-def]
    """Run `steps` against a log and two empty stores; assert the properties. `horizon` is how many
    offsets of a partition the views remember an event id for (small values make them forget)."""
    log = MemoryEventLog(partitions=3)
    projections = build_projections(WEIGHTS)

    def projector(p, batch_size):  # type: ignore[no-untyped-def]
        return Projector(p, log, incremental, batch_size=batch_size, guard_horizon=horizon)

    runners = {name: projector(p, first_batch) for name, p in projections.items()}
    appended: list = []
    for kind, arg in steps:
        if kind == "append":
            await log.append(arg)
            appended.extend(arg)
        elif kind == "project":
            for runner in runners.values():
                for _ in range(arg):
                    await runner.step()
        else:
            runners = {name: projector(p, arg) for name, p in projections.items()}
    for runner in runners.values():
        await runner.catch_up()
    for name, projection in projections.items():
        await Projector(projection, log, replayed, batch_size=5, guard_horizon=horizon).replay()
        assert await incremental.dump(projection.spaces) == await replayed.dump(projection.spaces), name

    # Independent oracle for the one non-idempotent view: in each partition's order, a copy of an
    # event id counts unless the copy that last counted is at most `horizon` offsets before it
    # (retries carry the same content, so which copy counts does not change the sum).
    expected: dict[str, float] = defaultdict(float)
    for partition in await log.partitions(INTERACTIONS):
        counted_at: dict[str, int] = {}
        result = await log.read(INTERACTIONS, partition, 0, 10_000)
        for logged in result.events:
            e, offset = logged.event, logged.position.offset
            if not isinstance(e, InteractionRecorded):
                continue  # exposures share the stream and count nothing here
            last = counted_at.get(e.event_id)
            if last is None or offset - last > horizon:
                counted_at[e.event_id] = offset
                expected[f"{e.item_type}:all/{e.item_id}"] += WEIGHTS.weight(e.action, e.value)
    dump = await incremental.dump(["popularity"])
    actual = {
        f"{key}/{member}": score
        for key, members in dump["popularity"]["zsets"].items() if key.endswith(":all")
        for member, score in members.items()
    }
    assert actual == {k: v for k, v in expected.items() if k in actual or v != 0.0}
    if horizon >= 1_000_000:
        await check_experiment_counts(log, incremental)


async def check_experiment_counts(log: MemoryEventLog, store) -> None:  # type: ignore[no-untyped-def]
    """The experiments view counts each exposure and each attributed interaction once per event id."""
    expected: dict[str, float] = defaultdict(float)
    seen: set[str] = set()
    for partition in await log.partitions(INTERACTIONS):
        for logged in (await log.read(INTERACTIONS, partition, 0, 10_000)).events:
            e = logged.event
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
            if isinstance(e, RecommendationsServed):
                for served in e.served:
                    expected[f"{served['variant']}:exposures"] += 1
                    expected[f"{served['variant']}:items"] += len(served["items"])
            elif isinstance(e, InteractionRecorded) and (named := attribution(e.recommendation_id)):
                expected[f"{named[1]}:action:{e.action}"] += 1
    actual = (await store.dump(["experiments"]))["experiments"]["zsets"].get("home", {})
    assert actual == {k: v for k, v in expected.items() if k in actual or v != 0.0}


async def sqlite_scenario(steps, first_batch: int, folder: Path, horizon: int) -> None:  # type: ignore[no-untyped-def]
    incremental = SQLiteViewStore(folder / "incremental.sqlite")
    replayed = SQLiteViewStore(folder / "replayed.sqlite")
    try:
        await scenario(steps, first_batch, incremental, replayed, horizon)
    finally:
        await incremental.close()
        await replayed.close()


# Horizons: one that never forgets in these runs, and small ones that forget guards mid-run.
HORIZONS = st.sampled_from([1_000_000, 2, 5])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, first_batch=st.integers(1, 7), horizon=HORIZONS)
def test_replayed_view_equals_incremental_view(steps, first_batch, horizon) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(sqlite_scenario(steps, first_batch, Path(folder), horizon))
