"""A/B experiments in distributed mode, on the real local stack: the query side appends its
exposures to Kafka through the same log adapter the command side writes with, projector workers
keep the experiments view in Redis, and a replay of the Kafka topic into fresh Redis keys gives the
same counts.

All roles run in one process here, on a port of the test's own (the shared services' fixed ports
stay free for the other distributed tests); the topics, Redis keys and MongoDB database are this
run's own (tests/integration/services.py), and are removed at the end.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from domain.configuration import weights_of
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.redis_views import RedisViewStore
from movieaugur.app import create_app
from movieaugur.bootstrap import bootstrap
from projections.registry import build_projections
from projections.runner import Projector
from tests.conftest import serve, wait_until
from tests.integration.services import Services, start_services

pytestmark = pytest.mark.stack
EXPERIMENT = {"home": {"alpha": {"model": "alpha", "share": 0.5}, "beta": {"model": "beta", "share": 0.5}}}
CLICK_CHANCE = {"alpha": 0.5, "beta": 0.1}
USERS = 200


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    running = await asyncio.to_thread(start_services, tmp_path)
    yield running
    await asyncio.to_thread(running.cleanup)


async def test_exposures_through_kafka_and_counts_in_redis_replay_equal(services: Services, tmp_path: Path) -> None:
    settings = services.settings.model_copy(update={
        "experiments": EXPERIMENT, "exposure_flush_seconds": 0.05, "data_dir": tmp_path / "state"})
    container = await bootstrap(settings)
    try:
        async with serve(create_app(container)) as http:
            views = [{"event_id": str(uuid.uuid4()), "user_id": f"v{n}", "item_type": "movie", "item_id": f"m{n % 7}"}
                     for n in range(50)]
            assert (await http.post("/v1/events", json=views)).status == 200

            async def popular() -> Any:
                body = await (await http.get("/v1/popularity/movie?limit=5")).json()
                return body.get("items")

            await wait_until(popular, timeout=60)

            async def views_ready() -> bool:  # every view the route reads has caught up once (else 503)
                return (await http.get("/v1/users/probe/recommendations?limit=1")).status == 200  # no experiment: no exposure

            await wait_until(views_ready, timeout=60)
            served = []
            for n in range(USERS):
                response = await http.get(f"/v1/users/sim{n}/recommendations?limit=5&experiment=home")
                assert response.status == 200, await response.text()
                served.append(await response.json())
            exposures = Counter(body["variant"] for body in served)
            rng = random.Random(11)
            clicks: Counter[str] = Counter()
            events = []
            for body in served:
                if rng.random() < CLICK_CHANCE[body["variant"]]:
                    clicks[body["variant"]] += 1
                    first = body["items"][0]
                    events.append({"event_id": str(uuid.uuid4()), "user_id": body["user_id"], "item_type": "movie",
                                   "item_id": first["id"], "action": "click", "recommendation_id": body["recommendation_id"]})
            assert (await http.post("/v1/events", json=events)).status == 200

            async def counted() -> dict[str, Any] | None:
                [home] = (await (await http.get("/v1/experiments")).json())["experiments"]
                variants = {v["variant"]: v for v in home["variants"]}
                done = all(variants[v]["exposures"] == exposures[v] and variants[v]["clicks"] == clicks[v] for v in exposures)
                return variants if done else None

            variants = await wait_until(counted, timeout=60)
            assert variants["alpha"]["click_through_rate"] > variants["beta"]["click_through_rate"]
        live = await container.store.dump(["experiments"])
        assert live["experiments"]["zsets"]["home"]
        assert live == await _replayed(settings)
    finally:
        await container.close()


async def _replayed(settings: Any) -> dict[str, Any]:
    """The experiments view rebuilt from the Kafka topic into Redis keys of its own."""
    log = KafkaEventLog(settings)
    store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}replay:{uuid.uuid4().hex[:6]}:")
    try:
        await Projector(build_projections(weights_of(settings))["experiments"], log, store).replay()
        return await store.dump(["experiments"])
    finally:
        await log.close()
        await store.close()
