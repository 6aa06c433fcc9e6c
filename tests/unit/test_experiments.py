"""A/B experiments end to end on the embedded server: two trained models split 50/50, 1,000
simulated users served over HTTP, a click model that favours one variant, the clicks posted back
with their recommendation ids; the JSON route, /metrics and the dashboard show the favoured
variant's click-through higher, and a replay of the experiments view reproduces the counts.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from domain.events import INTERACTIONS, RecommendationsServed
from kernel.experiments import attribution, new_recommendation_id, parse_experiments
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.app import create_app
from movieaugur.bootstrap import bootstrap
from movieaugur.client import AsyncClient
from queries.exposures import MAX_LISTS, ExposureRecorder
from tests.conftest import serve, settle, wait_until
from tests.unit.test_fresh_recommendations import catalog, interactions

HOME = {"alpha": {"model": "alpha", "share": 0.5}, "beta": {"model": "beta", "share": 0.5}}
#: The click model: the chance a user clicks the first item of the list, per variant; a click is
#: followed by a view (a conversion) half the time.
CLICK_CHANCE = {"alpha": 0.35, "beta": 0.15}
USERS = 1000


async def _ok(response: Any) -> Any:
    assert response.status == 200, await response.text()
    return await response.json()


async def test_two_models_a_click_model_and_a_replay(tmp_path: Path) -> None:
    settings = Settings(mode="embedded", data_dir=tmp_path / "state", experiments={"home": HOME},
                        exposure_flush_seconds=0.05)
    container = await bootstrap(settings)
    try:
        await container.log.append(catalog())
        await container.log.append(interactions())
        for name in ("alpha", "beta"):
            report = await operations.train(container, model=name, time_budget=1.0, force=True)
            assert report.published, report.reason
        async with serve(create_app(container)) as http:
            await settle(container)
            async with AsyncClient(str(http.make_url(""))) as client:
                await _simulate(client, container)
                experiments = await client.experiments()
            await _check_metrics_and_dashboard(http, experiments)
            view = await container.store.dump(["experiments"])
            [replayed] = await operations.replay(container, ["experiments"])
            assert replayed.events > 0
            assert await container.store.dump(["experiments"]) == view
            assert (await _ok(await http.get("/v1/experiments")))["experiments"] == experiments
    finally:
        await container.close()


async def _simulate(client: AsyncClient, container: Any) -> None:
    users = [f"sim{n}" for n in range(USERS)]
    served: list[dict[str, Any]] = []
    for start in range(0, USERS, 100):
        served += await asyncio.gather(*(client.recommendations(u, limit=10, experiment="home") for u in users[start:start + 100]))
    again = await client.recommendations(users[0], limit=10, experiment="home")  # assignment is stable
    assert again["variant"] == served[0]["variant"] and again["recommendation_id"] != served[0]["recommendation_id"]
    served.append(again)
    exposures = Counter(body["variant"] for body in served)
    assert set(exposures) == {"alpha", "beta"} and all(400 <= n <= 600 for n in exposures.values()), exposures
    home = parse_experiments({"home": HOME})["home"]
    for body in served:
        assert body["model"] == body["variant"] and body["items"], body  # each variant served by its model
        assert body["variant"] == home.assign(body["user_id"]).name  # the stable hash decides
        assert attribution(body["recommendation_id"]) == ("home", body["variant"])

    rng = random.Random(14)
    events, clicks, views = [], Counter[str](), Counter[str]()
    for body in served:
        variant, first = body["variant"], body["items"][0]
        if rng.random() < CLICK_CHANCE[variant]:
            clicks[variant] += 1
            events.append({"user_id": body["user_id"], "item_type": first["object_type"], "item_id": first["id"],
                           "action": "click", "recommendation_id": body["recommendation_id"]})
            if rng.random() < 0.5:
                views[variant] += 1
                events.append({**events[-1], "action": "view"})
    events.append({"user_id": "sim1", "item_type": "movie", "item_id": "a1", "action": "click"})  # outside experiments
    assert (await client.post_events(events)).appended == len(events)

    async def counted() -> list[dict[str, Any]] | None:
        [home] = await client.experiments()
        variants = {v["variant"]: v for v in home["variants"]}
        done = all(variants[v]["exposures"] == exposures[v] and variants[v]["clicks"] == clicks[v] for v in exposures)
        return home["variants"] if done else None

    variants = {v["variant"]: v for v in await wait_until(counted)}
    for name, row in variants.items():
        assert row["conversions"] == views[name] and row["actions"] == {"click": clicks[name], "view": views[name]}
        assert row["click_through_rate"] == round(clicks[name] / exposures[name], 6)
        assert row["items_shown"] == 10 * exposures[name]
    assert variants["alpha"]["click_through_rate"] > variants["beta"]["click_through_rate"]
    print(f"\nA/B: {dict(exposures)} lists served; click-through "
          + ", ".join(f"{n} {v['click_through_rate']:.3f}" for n, v in sorted(variants.items())))


async def _check_metrics_and_dashboard(http: Any, experiments: list[dict[str, Any]]) -> None:
    [home] = experiments
    expected = {v["variant"]: v for v in home["variants"]}
    response = await http.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    for name in ("click_through_rate", "exposures", "clicks", "conversions"):
        samples = {s.labels["variant"]: s.value for s in families[f"movieaugur_experiment_{name}"].samples}
        assert samples == pytest.approx({v: row[name] for v, row in expected.items()}), name
    ctr = {s.labels["variant"]: s.value for s in families["movieaugur_experiment_click_through_rate"].samples}
    assert ctr["alpha"] > ctr["beta"]

    page = await (await http.get("/dashboard")).text()
    shown = {v: float(rate) for v, rate in re.findall(
        r"<tr data-variant='(\w+)'>.*?<td class='n ctr'>([0-9.]+) ", page)}
    assert shown == pytest.approx({v: row["click_through_rate"] for v, row in expected.items()}, abs=1e-4)
    assert shown["alpha"] > shown["beta"]
    user = await (await http.get("/dashboard/users/sim0")).text()
    [variant] = re.findall(r"<tr data-experiment='home'><td>home</td><td class='variant'>(\w+)</td>", user)
    assert variant == parse_experiments({"home": HOME})["home"].assign("sim0").name  # the API's rule (checked above)


# -- the parts: configuration, ids, validation, fallbacks ---------------------------------------------


def test_configuration_is_validated() -> None:
    assert set(Settings(experiments=json.dumps({"home": HOME})).experiment_specs()) == {"home"}
    bad = [
        ({"home": {"a": {"model": "m", "share": 0.5}}}, "sum to 0.5"),
        ({"home": {}}, "needs an object of variants"),
        ({"Home!": HOME}, "experiment name"),
        ({"home": {"a.b": {"model": "m", "share": 1}}}, "name is not valid"),
        ({"home": {"a": {"model": "m", "share": "1"}}}, "'share' must be a number"),
        ({"home": {"a": {"model": "", "share": 1}}}, "'model' must name a model"),
        ({"home": {"a": {"model": "m", "share": 1, "extra": 1}}}, "exactly 'model' and 'share'"),
    ]
    for raw, message in bad:
        with pytest.raises(ValueError, match=message):
            Settings(experiments=json.dumps(raw))
    with pytest.raises(ValueError, match="MOVIEAUGUR_DEFAULT_EXPERIMENT"):
        Settings(experiments={"home": HOME}, default_experiment="other")


def test_assignment_is_stable_and_follows_the_shares() -> None:
    [home] = parse_experiments({"home": {"a": {"model": "m", "share": 0.2}, "b": {"model": "n", "share": 0.8}}}).values()
    counts = Counter(home.assign(f"user{n}").name for n in range(10_000))
    assert 1800 < counts["a"] < 2200, counts
    assert all(home.assign(f"user{n}") == home.assign(f"user{n}") for n in range(100))
    assert attribution(new_recommendation_id("home", "b")) == ("home", "b")
    assert attribution(new_recommendation_id()) is None and attribution("a.b") is None


async def test_a_bad_recommendation_id_is_a_400_naming_the_field(client: Any) -> None:
    base = {"event_id": "e1", "user_id": "u1", "item_type": "movie", "item_id": "m1", "action": "click"}
    for bad in ("x" * 129, "has space", "semi;colon", "", 7):
        response = await client.post("/v1/events", json=[{**base, "recommendation_id": bad}])
        assert response.status == 400, bad
        body = await response.json()
        assert "recommendation_id" in json.dumps(body), body
    ok = await client.post("/v1/events", json=[{**base, "recommendation_id": "home.alpha.0123abcd"}])
    assert ok.status == 200, await ok.text()


async def test_unknown_experiments_and_unpublished_models(tmp_path: Path) -> None:
    """An unknown experiment is a 404 naming the configured ones; a variant whose model is not
    published is served by the default model and still counted in its variant; with no experiment
    the list has a recommendation id and no variant, and records no exposure."""
    settings = Settings(mode="embedded", data_dir=tmp_path / "state", default_experiment="home",
                        experiments={"home": {"ghost": {"model": "ghost", "share": 1.0}}})
    container = await bootstrap(settings)
    try:
        await container.log.append(catalog())
        await container.log.append(interactions())
        async with serve(create_app(container)) as http:
            await settle(container)
            missing = await http.get("/v1/users/u1/recommendations?experiment=nope")
            assert missing.status == 404 and "home" in (await missing.json())["error"]
            body = await _ok(await http.get("/v1/users/u1/recommendations"))  # the default experiment
            assert (body["experiment"], body["variant"], body["model"]) == ("home", "ghost", "default")
            plain = await _ok(await http.get("/v1/users/u1/recommendations?model=default"))
            assert plain["variant"] is None and attribution(plain["recommendation_id"]) is None

            async def exposed() -> list[Any]:
                return [e async for e in container.log.scan("interactions") if isinstance(e.event, RecommendationsServed)]

            [logged] = await wait_until(exposed)
            [served] = logged.event.served
            assert served["recommendation_id"] == body["recommendation_id"]
            assert (served["variant"], served["model"], served["fallback"]) == ("ghost", "default", "popularity")
    finally:
        await container.close()


async def test_exposures_outlast_an_unavailable_log_and_a_full_queue_is_counted(tmp_path: Path) -> None:
    """Kafka unreachable: the flush keeps the built event; once a log answers, the same event (same
    id) is appended, and a first attempt that had landed after all makes the retry a duplicate.
    Beyond the queue's bound exposures are dropped and counted; a long flush is split in events."""
    registry = CollectorRegistry()
    down = KafkaEventLog(Settings(mode="distributed", kafka_bootstrap="127.0.0.1:1", kafka_write_timeout_seconds=0.5))
    recorder = ExposureRecorder(down, flush_seconds=60, queue_max=3, registry=registry)
    for n in range(5):
        recorder.record({"recommendation_id": f"home.a.t{n}", "user_id": f"u{n}", "experiment": "home", "variant": "a",
                         "items": ["movie:m1"]})
    assert registry.get_sample_value("movieaugur_exposures_dropped_total") == 2
    await recorder.flush()
    [held] = recorder.ready
    await recorder.flush()  # still down: the same event waits, with the same id
    assert [e.event_id for e in recorder.ready] == [held.event_id]
    assert recorder.waiting == 3 and registry.get_sample_value("movieaugur_exposures_recorded_total") == 0
    await down.close()

    up = SQLiteEventLog(tmp_path / "log.sqlite")
    try:
        await up.append([held])  # the first attempt landed after all (its answer was lost)
        recorder.log = up
        await recorder.flush()
        assert recorder.waiting == 0 and not recorder.ready
        logged = [e.event async for e in up.scan(INTERACTIONS)]
        assert [e.event_id for e in logged] == [held.event_id] and len(held.served) == 3

        for n in range(2 * MAX_LISTS + 1):
            recorder.queue_max = 10 * MAX_LISTS
            recorder.record({"recommendation_id": f"home.b.x{n}", "user_id": "u", "experiment": "home", "variant": "b"})
        await recorder.flush()
        sizes = [len(e.event.served) async for e in up.scan(INTERACTIONS)]
        assert sizes == [3, MAX_LISTS, MAX_LISTS, 1]
    finally:
        await up.close()
