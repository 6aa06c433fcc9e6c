"""Projector workers on the local stack: 1 vs 2 workers of one projection, and append-to-visible latency.

Why: issue 10 asks whether a second worker of a projection takes half the partitions and half the
work, and how fresh a view stays under sustained ingest. Both are measured with real processes:
each worker is a separate Python process (the way `movieaugur serve --role projectors` runs), joined
to one consumer group; the yardstick is a raw aiokafka consumer decoding every record in the same
run (bench/projection_kafka.py).

`workers`: MovieLens imported into fresh topics; for 1 and then 2 workers, each worker joins the
group, waits until the group has split the partitions, then all start at one signal; the time until
the view's tracking reaches the end of the topic gives events/s.

`freshness`: one worker follows the log live while this process appends at a fixed rate (default
10,000 events/s, batches every 50 ms) through the log adapter (the command service's own path after
validation); each batch carries one probe event for a unique item, and a sampler polls the Redis
view every 5 ms for the probes: the time from the append's acknowledgement to the probe's score in
the view is the append-to-visible latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
from _util import DEFAULT_MOVIELENS, emit, machine, markdown, say
from projection_kafka import load, raw_consumer

from domain.configuration import weights_of
from domain.events import INTERACTIONS, InteractionRecorded
from kernel.gc_tuning import tune_for_streaming
from kernel.settings import Settings
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.redis_views import RedisViewStore
from projections.popularity import SPACE, all_time_key
from projections.registry import build_projections
from projections.runner import Projector


async def worker(prefix: str, run: str, projection: str, workers: int, signals: Path) -> None:
    """One projector worker: join the group, wait for its share, say ready, wait for go, follow."""
    settings = Settings(mode="distributed", topic_prefix=prefix)
    chosen = build_projections(weights_of(settings))[projection]
    log = KafkaEventLog(settings, group=f"{prefix}{run}")
    whole = KafkaEventLog(settings)
    store = RedisViewStore(settings.redis_url, prefix=f"{prefix}{run}:")
    partitions = settings.kafka_partitions
    try:
        while True:  # every stream's consumer in the group, and the split settled
            shares = [len(await log.partitions(stream)) for stream in chosen.streams]
            if all(0 < share < partitions for share in shares) if workers > 1 else all(s == partitions for s in shares):
                break
            await asyncio.sleep(0.1)
        (signals / f"ready-{os.getpid()}").touch()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the parent's "go"
        projector = Projector(chosen, log, store, redactions_log=whole, guard_horizon=settings.dedupe_horizon_events)
        await projector.run(asyncio.Event())
    finally:
        await log.close()
        await whole.close()
        await store.close()


def start_workers(prefix: str, run: str, projection: str, count: int, signals: Path) -> list[subprocess.Popen]:
    signals.mkdir(parents=True, exist_ok=True)  # where each worker says it is ready
    command = [sys.executable, __file__, "worker", "--prefix", prefix, "--run", run, "--projection", projection,
               "--workers", str(count), "--signals", str(signals)]
    processes = [subprocess.Popen(command, stdin=subprocess.PIPE) for _ in range(count)]
    deadline = time.monotonic() + 120
    while len(list(signals.glob("ready-*"))) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stop(processes)
            raise SystemExit(f"{count} workers did not get ready")
        time.sleep(0.05)
    return processes


def go(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.flush()


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()


async def tracked(store: RedisViewStore, projection: str) -> int:
    return sum(offset for source, offset in (await store.positions(projection)).items() if source.startswith(INTERACTIONS))


async def end_of_topic(settings: Settings) -> int:
    log = KafkaEventLog(settings)
    try:
        return sum((await log.end_offsets(INTERACTIONS)).values())
    finally:
        await log.close()


def measure_workers(settings: Settings, projection: str, count: int, events: int, tmp: Path) -> float:
    run = f"w{count}-{uuid.uuid4().hex[:4]}"
    signals = tmp / run
    processes = start_workers(settings.topic_prefix, run, projection, count, signals)

    async def until_done() -> float:
        end = await end_of_topic(settings)
        store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}{run}:")
        try:
            go(processes)
            started = time.perf_counter()
            while await tracked(store, projection) < end:
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"{count} workers did not finish in 600 s")
                await asyncio.sleep(0.01)
            return events / (time.perf_counter() - started)
        finally:
            await store.close()

    try:
        return asyncio.run(until_done())
    finally:
        stop(processes)


async def paced_ingest(settings: Settings, run: str, rate: int, seconds: float, interval: float) -> list[float]:
    """Append `rate` events/s for `seconds`; return each probe's append-to-visible latency (s)."""
    log = KafkaEventLog(settings)
    store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}{run}:")
    key = f"{store.prefix}z:{SPACE}:{all_time_key('movie')}"
    acked: dict[str, float] = {}
    latencies: list[float] = []
    sending = True

    async def sampler() -> None:
        while sending or acked:
            waiting = list(acked)
            if waiting:
                scores = await store.redis.zmscore(key, waiting)
                now = time.perf_counter()
                for probe, score in zip(waiting, scores, strict=True):
                    if score is not None:
                        latencies.append(now - acked.pop(probe))
            await asyncio.sleep(0.005)

    per_batch = max(1, int(rate * interval))
    watcher = asyncio.ensure_future(sampler())
    try:
        started = time.perf_counter()
        batch = 0
        while time.perf_counter() - started < seconds:
            due = started + batch * interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            probe = f"probe-{run}-{batch}"
            events = [InteractionRecorded.new(user_id=f"u{batch}-{i}", item_id=f"m{i % 500}", item_type="movie")
                      for i in range(per_batch - 1)]
            events.append(InteractionRecorded.new(user_id=f"p{batch}", item_id=probe, item_type="movie"))
            await log.append(events)
            acked[probe] = time.perf_counter()
            batch += 1
        achieved = batch * per_batch / (time.perf_counter() - started)
        say(f"appended {batch * per_batch:,} events at {achieved:,.0f}/s")
        sending = False
        await asyncio.wait_for(watcher, 120)
    finally:
        sending = False
        watcher.cancel()
        await log.close()
        await store.close()
    return latencies


def measure_freshness(settings: Settings, projection: str, rate: int, seconds: float, tmp: Path) -> dict[str, float]:
    run = f"f-{uuid.uuid4().hex[:4]}"
    processes = start_workers(settings.topic_prefix, run, projection, 1, tmp / run)
    go(processes)
    try:
        latencies = sorted(asyncio.run(paced_ingest(settings, run, rate, seconds, 0.05)))
    finally:
        stop(processes)

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"probes": len(latencies), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "max_ms": 1000 * latencies[-1], "mean_ms": 1000 * statistics.fmean(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    scale = sub.add_parser("workers", help="1 vs 2 workers replaying MovieLens, against a raw consumer")
    scale.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    scale.add_argument("--projection", default="popularity")
    fresh = sub.add_parser("freshness", help="append-to-visible latency under a paced ingest")
    fresh.add_argument("--rate", type=int, default=10_000, help="events per second")
    fresh.add_argument("--seconds", type=float, default=30.0)
    fresh.add_argument("--projection", default="popularity")
    inner = sub.add_parser("worker", help="(internal) one worker process")
    for name in ("--prefix", "--run", "--projection", "--signals"):
        inner.add_argument(name, required=True)
    inner.add_argument("--workers", type=int, required=True)
    for each in (scale, fresh):
        each.add_argument("--json-out")
        each.add_argument("--tmp", default="/tmp/movieaugur-bench-workers")
    args = parser.parse_args()
    if args.what == "worker":
        asyncio.run(worker(args.prefix, args.run, args.projection, args.workers, Path(args.signals)))
        return
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = Settings(mode="distributed", topic_prefix=prefix)
    tmp = Path(args.tmp)
    say(f"topic prefix {prefix}; load {os.getloadavg()}")
    if args.what == "workers":
        events = asyncio.run(load(settings, args.movielens))
        seconds, count = asyncio.run(raw_consumer(settings))
        raw = count / seconds
        rates = {n: measure_workers(settings, args.projection, n, events, tmp) for n in (1, 2)}
        rows = [[f"{n} worker{'s' if n > 1 else ''}", f"{rate:,.0f}", f"{raw:,.0f}", f"{rate / raw:.2f}×"] for n, rate in rates.items()]
        table = markdown([f"{args.projection}", "events/s", "raw consumer + decode", "ratio"], rows)
        emit({"machine": machine(), "raw": raw, "workers": rates, "load_after": os.getloadavg()}, table, args.json_out)
    else:
        asyncio.run(KafkaEventLog(settings).ensure_topics())
        result = measure_freshness(settings, args.projection, args.rate, args.seconds, tmp)
        table = markdown(["rate", "probes", "p50 ms", "p90 ms", "p99 ms", "max ms"],
                         [[f"{args.rate:,}/s", result["probes"], *(f"{result[k]:.0f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))]])
        emit({"machine": machine(), **result, "load_after": os.getloadavg()}, table, args.json_out)


if __name__ == "__main__":
    tune_for_streaming()  # as every `movieaugur` command does; both sides of the comparison run with it
    main()
