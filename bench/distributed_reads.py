"""Distributed reads while the document store is busy: wrk against the query service (no NGINX cache)
during and after Kafka Connect sinks the MovieLens catalog into the MongoDB-wire store.

Why: in distributed mode the catalog and recommendations views are kept by Connect sinks in the
document store, and a reader must not slow down because that store is taking writes (issue 9: p99 ≤
20 ms during and after the catalog sink of ml-latest-small). The query service keeps the catalog in
its own memory from the items topic, and reads published lists by `_id` point reads; this bench
shows what that buys under a real load generator, with the same process's /healthz as yardstick.

Steps (fresh topic prefix and database, on the running local stack; `movieaugur stack up` first):
the demo sample (600 users) into Kafka, a projector and a query service started as processes, a
model trained and published (lists reach the store through the recommendations sink); then wrk on
each route while the ml-latest-small catalog (9,742 documents) is appended and sunk, and again after
the sink has caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
from _util import DEFAULT_MOVIELENS, emit, machine, markdown, say
from serve_wrk import ROUTES, free_port, run_wrk, users_of, wait_ready

from domain.configuration import weights_of
from kernel.settings import Settings
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.bootstrap import bootstrap
from movieaugur.operations import load_sample, prepare_distributed
from offline.ingest.movielens import catalog_events
from projections.registry import build_projections

CATALOG_COLLECTION = build_projections(weights_of(Settings()))["catalog"].sink.collection  # type: ignore[union-attr]
MEASURED = ("healthz", "v1_recommendations", "legacy_recommendations", "legacy_popularity")
EXECUTABLE = str(Path(sys.executable).with_name("movieaugur"))


def environment(settings: Settings, data_dir: Path, port: int) -> dict[str, str]:
    return {**os.environ, "MOVIEAUGUR_MODE": "distributed", "MOVIEAUGUR_TOPIC_PREFIX": settings.topic_prefix,
            "MOVIEAUGUR_MONGO_DATABASE": settings.mongo_database, "MOVIEAUGUR_DATA_DIR": str(data_dir),
            "MOVIEAUGUR_QUERY_PORT": str(port)}


async def seed(settings: Settings) -> dict[str, int]:
    await prepare_distributed(settings)
    container = await bootstrap(settings)
    try:
        return await load_sample(container)
    finally:
        await container.close()


async def append_catalog(settings: Settings, folder: Path) -> float:
    log = KafkaEventLog(settings)
    try:
        started = time.perf_counter()
        await log.append(list(catalog_events(folder)))
        return time.perf_counter() - started
    finally:
        await log.close()


def sink_caught_up(settings: Settings, expected: int) -> bool:
    from pymongo import MongoClient

    client: MongoClient = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=5000)
    try:  # FerretDB counts by scanning, so ask only now and then
        return client[settings.mongo_database][CATALOG_COLLECTION].estimated_document_count() >= expected
    finally:
        client.close()


def served_from_model(url: str, user: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/users/{user}/recommendations?limit=5", timeout=5) as answer:
            return json.loads(answer.read()).get("fallback") is None
    except OSError:
        return False


def measure(url: str, users: list[str], seconds: int) -> dict[str, dict[str, float]]:
    return {name: run_wrk(url, ROUTES[name], users, seconds, 8, 2) for name in MEASURED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    parser.add_argument("--seconds", type=int, default=5, help="wrk seconds per route and phase")
    parser.add_argument("--data-dir", default="/tmp/movieaugur-bench-distributed")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    settings = Settings(mode="distributed", topic_prefix=f"reads{run}.", mongo_database=f"reads{run}")
    data_dir = Path(args.data_dir) / run
    port = free_port()
    env = environment(settings, data_dir, port)
    say(f"prefix {settings.topic_prefix}; load {os.getloadavg()}")
    sample = asyncio.run(seed(settings))
    say(f"sample: {sample}")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = [
        subprocess.Popen([EXECUTABLE, "serve", "--role", role, "--port", str(port)] if role == "queries"
                         else [EXECUTABLE, "serve", "--role", role], env=env,
                         stdout=(logs / f"{role}.log").open("w"), stderr=subprocess.STDOUT)
        for role in ("projectors", "queries")
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, processes[1])
        trained = subprocess.run([EXECUTABLE, "train", "--budget", "10", "--force"], env=env, capture_output=True, text=True)
        if trained.returncode != 0:
            raise SystemExit(f"train failed: {trained.stderr[-2000:]}")
        users = users_of(url)
        deadline = time.monotonic() + 180
        while not served_from_model(url, users[0]):
            if time.monotonic() > deadline:
                raise SystemExit("recommendations never served from the published model")
            time.sleep(0.5)
        expected = sum(1 for _ in catalog_events(Path(args.movielens))) + sample["catalog"]  # and the sample's titles
        started = time.perf_counter()
        appended = asyncio.run(append_catalog(settings, Path(args.movielens)))
        say(f"catalog appended in {appended:.1f}s; measuring during the sink")
        during = measure(url, users, args.seconds)
        copied = sink_caught_up(settings, expected)
        while not sink_caught_up(settings, expected):
            if time.perf_counter() - started > 600:
                raise SystemExit("the catalog sink did not catch up in 600 s")
            time.sleep(1.0)
        sink_seconds = time.perf_counter() - started
        say(f"sink caught up after {sink_seconds:.1f}s; measuring after it")
        after = measure(url, users, args.seconds)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    rows = []
    for phase, results in (("during the sink", during), ("after", after)):
        floor = results["healthz"]["rps"]
        for name in MEASURED:
            r = results[name]
            rows.append([phase, name, f"{r['rps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                         f"{r['rps'] / floor:.2f}×"])
    table = markdown(["phase", "route", "req/s", "p50 ms", "p99 ms", "vs /healthz"], rows)
    emit({"machine": machine(), "during": during, "after": after, "catalog_documents": expected,
          "catalog_appended_s": appended, "sink_done_s": sink_seconds, "sink_done_before_during_ended": copied,
          "load_after": os.getloadavg()}, table, args.json_out)


if __name__ == "__main__":
    main()
