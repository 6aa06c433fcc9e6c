"""Distributed write path: events/s through NGINX into Kafka, against a plain producer, same run.

Why: an acknowledged write must be committed in Kafka (acks=all, idempotent, one transaction per
request, duplicates refused), and that costs more than producing records. The raw yardstick is a
plain aiokafka producer with the same delivery guarantees (acks=all, idempotence on) sending the
same JSON records from `--clients` concurrent tasks, with no HTTP, validation, dedupe or
transaction. Ours is `--clients` concurrent HTTP clients posting `--batch`-event batches to
`POST /v1/events` through the NGINX gateway of a running `movieaugur up`. A second table gives
one-event requests' latency (p50/p99), sent one after another once the projectors have caught up.

With `--without-projectors` ours is measured again with the projector service stopped: on a
2-core machine the projectors following the writes take most of a core that the plain producer's
run, on a topic nobody reads, keeps for itself. `--rounds` alternates the two sides (the plain
producer's rate drifts by ±15 % between runs on this machine).

Needs `movieaugur up` (the command service behind NGINX on the gateway port); the command
workers it counts are `movieaugur up --command-workers N` (MOVIEAUGUR_COMMAND_WORKERS).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import _util  # noqa: F401 - puts the repo on sys.path
import aiohttp
import orjson
from _util import emit, markdown, say

from kernel.settings import Settings


def events(n: int, run: str) -> list[dict]:
    return [
        {"event_id": f"{run}-{i}", "user_id": f"u{i % 5000}", "item_type": "movie", "item_id": f"m{i % 2000}",
         "action": "view"}
        for i in range(n)
    ]


async def raw_producer(settings: Settings, total: int, clients: int, batch: int) -> float:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"{settings.topic_prefix}rawbench{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, settings.kafka_partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=2, max_batch_size=512 * 1024)
    await producer.start()
    records = [orjson.dumps(e) for e in events(total, uuid.uuid4().hex[:6])]
    try:
        started = time.perf_counter()

        async def client(part: list[bytes]) -> None:
            for start in range(0, len(part), batch):
                futures = [await producer.send(topic, value=r, key=r[:16]) for r in part[start : start + batch]]
                await asyncio.gather(*futures)

        share = len(records) // clients
        await asyncio.gather(*(client(records[i * share : (i + 1) * share]) for i in range(clients)))
        return total / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def ours(gateway: str, total: int, clients: int, batch: int) -> float:
    every = events(total, uuid.uuid4().hex[:6])
    bodies = [orjson.dumps(every[i : i + batch]) for i in range(0, total, batch)]
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        queue = list(bodies)

        async def client() -> None:
            while queue:
                body = queue.pop()
                async with session.post(f"{gateway}/v1/events", data=body,
                                        headers={"Content-Type": "application/json"}) as response:
                    if response.status != 200:
                        raise SystemExit(f"POST answered {response.status}: {await response.text()}")

        await asyncio.gather(*(client() for _ in range(clients)))
        return total / (time.perf_counter() - started)


async def single_events(gateway: str, count: int) -> dict[str, float]:
    latencies = []
    run = uuid.uuid4().hex[:6]
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            body = orjson.dumps(events(1, f"{run}-{i}"))
            started = time.perf_counter()
            async with session.post(f"{gateway}/v1/events", data=body, headers={"Content-Type": "application/json"}) as r:
                assert r.status == 200, await r.text()
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {"p50_ms": statistics.median(latencies), "p99_ms": latencies[int(len(latencies) * 0.99) - 1]}


@contextmanager
def projectors_stopped() -> Iterator[None]:
    """The system's projector service stopped, then started again with its own environment.

    Why: on this 2-core machine the projectors following the bench's writes take most of a core
    (they apply every event to Redis), which the plain producer's run, on a topic nobody reads,
    never pays. The write path alone is measured without them; production runs them elsewhere."""
    from movieaugur.system import System, process_environment

    service = System().service("projectors")
    pid = service.pid()
    if pid is None:
        raise SystemExit("no projector service runs: start the system with `movieaugur up`")
    env = process_environment(pid)
    service.stop()
    try:
        yield
    finally:
        service.spawn(env)
        service.wait_ready(120)


def command_workers() -> int:
    from movieaugur.system import System

    return sum(1 for s in System().status().services if s.role == "commands" and s.pid is not None)


def wait_until_projected(timeout: float = 300.0) -> float:
    """Seconds until the projectors report no lag: one-event latency is measured on a system that
    has digested the batches before it, not while it is still applying them."""
    from movieaugur.system import System

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        lags = System().lags()
        if lags is not None and not any(lags[0].values()):
            return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"the projectors still lag after {timeout:.0f}s: see `movieaugur status`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:18080")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat plain producer then ours this many times (the box's speed drifts)")
    parser.add_argument("--without-projectors", action="store_true",
                        help="also measure ours with the projector service stopped (see projectors_stopped)")
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the script works")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.singles, args.rounds = 4000, 20, 1
    settings = Settings(mode="distributed")
    workers = command_workers()

    def batches() -> float:
        return asyncio.run(ours(args.gateway, args.events, args.clients, args.batch))

    rows, rounds = [], []
    for number in range(1, args.rounds + 1):
        wait_until_projected()  # both sides start on a system that is not still applying earlier writes
        raw = asyncio.run(raw_producer(settings, args.events, args.clients, args.batch))
        say(f"round {number}: plain producer {raw:,.0f} events/s")
        measured = {"raw": raw, "following": batches()}
        say(f"round {number}: ours, projectors following, {measured['following']:,.0f} events/s")
        if args.without_projectors:
            with projectors_stopped():
                measured["stopped"] = batches()
            say(f"round {number}: ours, projectors stopped, {measured['stopped']:,.0f} events/s")
        rounds.append(measured)
        for case in ("following", "stopped"):
            if case in measured:
                rows.append([number, f"{workers} command worker(s), projectors {case}", f"{measured[case]:,.0f}",
                             f"{raw:,.0f}", f"{measured[case] / raw:.2f}×"])
    for case in ("following", "stopped"):
        ratios = [r[case] / r["raw"] for r in rounds if case in r]
        if len(ratios) > 1:
            rows.append(["median", f"projectors {case}", "", "", f"{statistics.median(ratios):.2f}×"])
    caught_up = wait_until_projected()
    say(f"projectors caught up {caught_up:.1f}s after the last batch")
    singles = {"following": asyncio.run(single_events(args.gateway, args.singles))}
    if args.without_projectors:
        with projectors_stopped():
            singles["stopped"] = asyncio.run(single_events(args.gateway, args.singles))
    table = markdown(["round", f"batches of {args.batch} through NGINX", "ours events/s",
                      "plain producer events/s", "ratio"], rows)
    table += "\n\n" + markdown(["one-event POST through NGINX", "p50 ms", "p99 ms"],
                                 [[f"projectors {case}", f"{v['p50_ms']:.1f}", f"{v['p99_ms']:.1f}"]
                                  for case, v in singles.items()])
    emit({"rounds": rounds, "single": singles, "clients": args.clients, "batch": args.batch,
          "command_workers": workers, "caught_up_seconds": caught_up}, table, args.json_out)

if __name__ == "__main__":
    main()
