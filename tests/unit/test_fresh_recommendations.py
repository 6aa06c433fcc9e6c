"""Fresh recommendations without retraining: fold-in of a user's current interactions into the
published model version, content similarity and cold-item slots for items nobody has interacted
with, dislikes demoting what is like them, and clean fallbacks when a version's artifacts are
missing (queries/fresh.py, offline/serving.py, offline/training/fold_in.py, content.py).

The sample has two taste clusters with metadata to match: comedies ("a…") that half of the users
watch and horror films ("b…") that the other half watch, so the expected direction is known."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from domain.events import InteractionRecorded, ItemCatalogued, from_unix
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.app import create_app
from movieaugur.bootstrap import bootstrap
from offline.serving import ModelRuntime
from queries.fresh import cold_positions, cold_slot_count, interleave
from tests.conftest import serve, settle, wait_until

NOW = int(time.time()) - 3600
CLUSTERS = {
    "a": ("Comedy", ["funny", "wedding", "road trip"], "A light comedy about friends, a wedding and a road trip."),
    "b": ("Horror", ["scary", "haunted house", "night"], "A horror story about a haunted house and the night."),
}
PER_CLUSTER = 15


def catalog() -> list[ItemCatalogued]:
    items = []
    for c, (genre, keywords, text) in CLUSTERS.items():
        for n in range(PER_CLUSTER):
            items.append(ItemCatalogued.new(
                item_type="movie", item_id=f"{c}{n}", title=f"{genre} number {n}", categories=[genre],
                keywords=keywords, description=text, release_date=str(1990 + n),
            ))
        for n in range(2):
            items.append(ItemCatalogued.new(item_type="series", item_id=f"{c}s{n}", title=f"{genre} series {n}",
                                            categories=[genre], keywords=keywords, description=text))
    return items


def interactions(users_per_cluster: int = 30, seed: int = 5) -> list[InteractionRecorded]:
    rng = np.random.default_rng(seed)
    events = []
    for c in CLUSTERS:
        for u in range(users_per_cluster):
            picks = rng.choice(PER_CLUSTER, size=8, replace=False)
            for k, n in enumerate(picks):
                events.append(InteractionRecorded.new(
                    event_id=f"{c}{u}-{n}", timestamp=from_unix(NOW - 1000 + k), user_id=f"u{c}{u}",
                    item_type="movie", item_id=f"{c}{n}",
                ))
    return events


def event(user: str, item: str, action: str = "like", item_type: str = "movie") -> dict:
    return {"event_id": f"{user}-{item}-{action}", "user_id": user, "item_id": item, "item_type": item_type,
            "action": action, "timestamp": NOW}


async def trained(container, serving: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The sample in the log, a model trained and published, the views caught up (by the app's
    projectors when it serves, else here)."""
    await container.log.append(catalog())
    await container.log.append(interactions())
    report = await operations.train(container, time_budget=1.0, force=True)
    assert report.published, report.reason
    if serving:
        await settle(container)
    else:
        await operations.catch_up(container)
    return report.version


async def recommended(client, user: str, query: str = "") -> dict:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/users/{user}/recommendations{query}")
    assert response.status == 200, await response.text()
    return await response.json()


def ids(body: dict) -> list[str]:
    return [item["id"] for item in body["items"]]


async def test_posted_interactions_change_recommendations_within_two_seconds(client, container) -> None:
    version = await trained(container)
    before = await recommended(client, "ua0", "?limit=6")
    assert before["model_version"] == version and before["fallback"] is None
    assert all(i.startswith("a") for i in ids(before)), ids(before)  # an "a" user gets comedies

    likes = [event("ua0", f"b{n}") for n in range(6)]  # then likes six horror films
    posted = time.perf_counter()
    assert (await client.post("/v1/events", json=likes)).status == 200

    async def horror_first() -> dict | None:
        body = await recommended(client, "ua0", "?limit=6")
        return body if all(i.startswith("b") for i in ids(body)[:3]) else None

    after = await wait_until(horror_first, timeout=2.0)
    elapsed = time.perf_counter() - posted
    assert elapsed < 2.0
    assert after["model_version"] == version and after["fallback"] is None  # the same version: no retraining
    assert not {f"b{n}" for n in range(6)} & set(ids(after))  # what was just liked is seen


async def test_new_user_gets_personal_results_and_cold_items_enter(client, container) -> None:
    version = await trained(container)
    assert (await client.post("/v1/events", json=[event("newbie", "b1"), event("newbie", "b2"), event("newbie", "b3")])).status == 200

    async def personal() -> dict | None:
        body = await recommended(client, "newbie", "?limit=5&item_type=movie")
        return body if body["fallback"] is None else None

    body = await wait_until(personal, timeout=2.0)
    assert body["model_version"] == version
    assert ids(body) and all(i.startswith("b") for i in ids(body)), ids(body)
    stranger = await recommended(client, "nobody")
    assert stranger["fallback"] == "popularity"

    # A horror film catalogued after training: no interactions, unknown to the model, yet it takes
    # a cold slot (position 5 of 20) for the horror fan at once, and not for a comedy fan. (Movies
    # only: the horror series nobody watched are cold too, and as like the fan's taste.)
    put = await client.put("/v1/items/movie/b-new", json={
        "title": "Night of the haunted house", "categories": ["Horror"], "keywords": ["scary", "haunted house"],
        "description": "A horror story about a haunted house at night.", "release_date": "2001",
    })
    assert put.status == 200

    async def cold_slot() -> dict | None:
        got = await recommended(client, "newbie", "?item_type=movie")
        return got if "b-new" in ids(got) else None

    body = await wait_until(cold_slot, timeout=2.0)
    assert ids(body).index("b-new") == cold_positions(20, cold_slot_count(20, 0.1))[0]
    assert body["fallback"] is None and body["model_version"] == version
    assert "b-new" not in ids(await recommended(client, "ua0", "?item_type=movie"))
    assert {"bs0", "bs1"} & set(ids(await recommended(client, "newbie")))  # cold series, when series may come


async def test_a_new_item_is_similar_and_recommended_before_any_training(client, container) -> None:
    await container.log.append(catalog())
    await container.log.append(interactions())
    await settle(container)
    put = await client.put("/v1/items/movie/b-new", json={
        "title": "Haunted", "categories": ["Horror"], "keywords": ["scary", "night"],
        "description": "A horror story about a haunted house.",
    })
    assert put.status == 200

    async def similar() -> dict | None:
        response = await client.get("/v1/items/movie/b-new/similar?limit=10&item_type=movie")
        return await response.json() if response.status == 200 else None

    body = await wait_until(similar, timeout=2.0)
    assert body["fallback"] == "content" and body["model_version"] is None
    assert len(body["items"]) == 10 and all(i.startswith("b") for i in ids(body))
    series = await (await client.get("/v1/items/movie/b-new/similar?item_type=series")).json()
    assert ids(series) == ["bs0", "bs1"] or ids(series) == ["bs1", "bs0"]
    comedy = await (await client.get("/v1/items/movie/a3/similar?limit=3")).json()
    assert all(i.startswith("a") for i in ids(comedy))
    assert (await client.get("/v1/items/movie/b-new/similar?item_type=podcast")).status == 404

    fan = await recommended(client, "ub0", "?item_type=movie")  # no model yet: popularity, and a cold slot by content
    assert fan["fallback"] == "popularity"
    assert "b-new" in ids(fan)
    assert "b-new" not in ids(await recommended(client, "ua0", "?item_type=movie"))


async def test_a_dislike_demotes_what_is_similar(client, container) -> None:
    await trained(container)
    likes = [event("mixed", f"a{n}") for n in range(3)] + [event("mixed", f"b{n}") for n in range(3)]
    assert (await client.post("/v1/events", json=likes)).status == 200

    async def folded() -> dict | None:
        body = await recommended(client, "mixed", "?limit=8&item_type=movie")
        return body if body["fallback"] is None and len(body["items"]) == 8 else None

    before = await wait_until(folded, timeout=2.0)
    horror_before = [i for i in ids(before) if i.startswith("b")]
    assert horror_before  # a mixed taste gets some of both
    assert (await client.post("/v1/events", json=[event("mixed", "b14", "dislike")])).status == 200

    async def demoted() -> dict | None:
        body = await recommended(client, "mixed", "?limit=8&item_type=movie")
        horror = [i for i in ids(body) if i.startswith("b")]
        ranks = [ids(body).index(i) for i in horror]
        return body if not ranks or min(ranks) >= len(ids(body)) - len(horror) else None

    after = await wait_until(demoted, timeout=2.0)  # every horror film now ranks below every comedy
    assert ids(after)[0].startswith("a")


async def test_a_heavy_users_history_beyond_the_cap_stays_out(tmp_path: Path) -> None:
    """Fold-in reads the strongest MOVIEAUGUR_FOLD_IN_MAX_HISTORY interactions; what the user saw
    beyond them still never comes back, and the list is still the fold-in's."""
    container = await bootstrap(Settings(mode="embedded", data_dir=tmp_path / "state", fold_in_max_history=3))
    try:
        async with serve(create_app(container)) as client:
            version = await trained(container)
            # every horror film seen; fold-in reads 3 of them, so the 12 others lead its ranking
            seen = [event("heavy", f"b{n}", "view") for n in range(PER_CLUSTER)] + [event("heavy", "b12"), event("heavy", "b13")]
            assert (await client.post("/v1/events", json=seen)).status == 200
            await settle(container)
            body = await recommended(client, "heavy", "?limit=1&item_type=movie")
            assert body["fallback"] is None and body["model_version"] == version
            assert [i[0] for i in ids(body)] == ["a"]  # the first film not seen
    finally:
        await container.close()


async def test_missing_or_broken_artifacts_fall_back_cleanly(client, container, settings: Settings) -> None:
    version = await trained(container)
    directory = settings.models_dir / "default" / version
    (directory / "serving.npz").write_bytes(b"not a numpy archive")
    known = await recommended(client, "ua1", "?limit=5")  # the published list answers
    assert known["model_version"] == version and known["fallback"] is None and len(known["items"]) == 5
    assert (await client.post("/v1/events", json=[event("late", "b1"), event("late", "b2")])).status == 200
    await settle(container)
    newcomer = await recommended(client, "late")  # fold-in cannot run: popularity, no 500
    assert newcomer["fallback"] == "popularity"

    runtime = ModelRuntime(settings, models_dir=Path(settings.models_dir) / "elsewhere")
    assert await runtime.recommend("default", version, {"movie:b1": 3.0}, 5, None, ()) is None  # nothing on this machine
    assert await runtime.similar("movie:b1", 5, None) is None  # an empty catalog knows no item


async def test_the_runtime_alone_and_fold_in_off(container) -> None:
    version = await trained(container, serving=False)
    on = ModelRuntime(container.settings)
    got = await on.recommend("default", version, {"movie:b1": 3.0, "movie:b2": 3.0}, 5, "movie", {"movie:b3"})
    assert got and all(k.startswith("movie:b") for k, _ in got)
    assert not {"movie:b1", "movie:b2", "movie:b3"} & dict(got).keys()  # own items and excluded ones out
    off = ModelRuntime(Settings(mode="embedded", data_dir=container.settings.data_dir, fold_in=False))
    assert await off.recommend("default", version, {"movie:b1": 3.0}, 5, None, ()) is None


def catalog_docs() -> dict[str, dict]:
    """The sample catalog as the catalog projection's documents ("type:id" → fields)."""
    return {f"{e.item_type}:{e.item_id}": {"title": e.title, "categories": e.categories, "keywords": e.keywords,
                                           "description": e.description} for e in catalog()}


async def test_remembered_answers_are_the_answers_of_a_new_runtime(container) -> None:
    """The runtime remembers fold-in and cold-item answers under all their inputs: asked again, in
    any order, they equal a new runtime's; a change of weights, filters, width or catalog answers anew."""
    version = await trained(container, serving=False)

    def runtime() -> ModelRuntime:
        fresh = ModelRuntime(container.settings)
        fresh.catalog_changed(catalog_docs())
        return fresh

    remembering = runtime()
    requests = [
        ({"movie:b1": 3.0, "movie:b2": 3.0}, 5, "movie", frozenset({"movie:b3"})),
        ({"movie:a1": 3.0, "movie:b4": -3.0}, 5, None, frozenset()),  # a dislike: the content index takes part
        ({"movie:b1": 3.0, "movie:b2": 3.0}, 9, "movie", frozenset({"movie:b3"})),  # wider
        ({"movie:b1": 3.0, "movie:b2": 3.0}, 5, None, frozenset()),  # another filter
        ({"movie:b1": 3.0, "movie:b2": 1.0}, 5, "movie", frozenset({"movie:b3"})),  # other weights
    ]
    for _ in range(2):
        for weights, n, item_type, exclude in requests:
            got = await remembering.recommend("default", version, weights, n, item_type, exclude)
            expected = await runtime().recommend("default", version, weights, n, item_type, exclude)
            assert got == expected and got is not None and len(got) == n
            cold = await remembering.cold_items("default", version, weights, 3, item_type, exclude)
            assert cold == await runtime().cold_items("default", version, weights, 3, item_type, exclude)

    # a new catalog item like the horror films: the remembered cold answer gives way to one that has it
    weights = {"movie:b1": 3.0, "movie:b2": 3.0}
    before = await remembering.cold_items("default", version, weights, 3, "movie", frozenset())
    assert "movie:b-new" not in dict(before[0])
    remembering.catalog_changed({"movie:b-new": {"title": "Horror number new", "categories": ["Horror"],
                                                 "keywords": CLUSTERS["b"][1], "description": CLUSTERS["b"][2]}})
    after = await remembering.cold_items("default", version, weights, 3, "movie", frozenset())
    assert "movie:b-new" in dict(after[0])


async def test_the_runtime_revision_moves_when_its_answers_could(container) -> None:
    """Kept recommendation lists (queries/answers.py) are checked against ModelRuntime.revision: it
    moves when a model version comes into memory and when the content index is built or grows,
    and stays put otherwise."""
    version = await trained(container, serving=False)
    runtime = ModelRuntime(container.settings)
    empty = runtime.revision()
    assert await runtime.model("default", version) is not None or await wait_until(
        lambda: _loaded(runtime, version), timeout=10.0)
    loaded = runtime.revision()
    assert loaded != empty and runtime.revision() == loaded
    runtime.catalog_changed(catalog_docs())
    await runtime.content_index()
    built = runtime.revision()
    assert built != loaded
    runtime.catalog_changed({"movie:a-new": {"title": "Comedy number new", "categories": ["Comedy"]}})
    await runtime.content_index()  # the new item is added to the index at the next use
    assert runtime.revision() not in (built, loaded, empty)


async def _loaded(runtime: ModelRuntime, version: str) -> bool:
    return runtime.loaded("default", version) is not None


def test_cold_slot_rule() -> None:
    assert cold_slot_count(20, 0.1) == 2 and cold_slot_count(10, 0.1) == 1 and cold_slot_count(20, 0.0) == 0
    assert cold_positions(20, 2) == [4, 14] and cold_positions(5, 1) == [2] and cold_positions(10, 1) == [4]
    assert interleave(list("abcdefghij"), ["X"], 10, 1) == list("abcdXefghi")
    assert interleave(list("abc"), ["X", "Y"], 20, 2) == list("abcXY")
    assert interleave(list("abc"), [], 20, 2) == list("abc")
