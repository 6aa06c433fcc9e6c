"""Distributed write path: events/s through NGINX into Kafka, against a plain producer, same run.

Why: an acknowledged write must be committed in Kafka (acks=all, idempotent, one transaction per
request, duplicates refused), and that costs more than producing records. The raw yardstick is a
plain aiokafka producer with the same delivery guarantees (acks=all, idempotence on) sending the
same JSON records from `--clients` concurrent tasks, with no HTTP, validation, dedupe or
transaction. Ours is `--clients` concurrent HTTP clients posting `--batch`-event batches to
`POST /v1/events` through the NGINX gateway of a running `movieaugur up`. A second table gives
one-event requests' latency (p50/p99).

Needs `movieaugur up` (the command service behind NGINX on the gateway port).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

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
    bodies = [orjson.dumps(events(total, uuid.uuid4().hex[:6])[i : i + batch]) for i in range(0, total, batch)]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:18080")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the script works")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.singles = 4000, 20
    settings = Settings(mode="distributed")
    raw = asyncio.run(raw_producer(settings, args.events, args.clients, args.batch))
    say(f"plain producer: {raw:,.0f} events/s")
    our = asyncio.run(ours(args.gateway, args.events, args.clients, args.batch))
    say(f"POST /v1/events through NGINX: {our:,.0f} events/s")
    single = asyncio.run(single_events(args.gateway, args.singles))
    rows = [["batches through NGINX", f"{our:,.0f}", f"{raw:,.0f}", f"{our / raw:.2f}×"]]
    table = markdown(["write path", "ours events/s", "plain producer events/s", "ratio"], rows)
    table += "\n\n" + markdown(["one-event POST", "p50 ms", "p99 ms"],
                               [["through NGINX", f"{single['p50_ms']:.1f}", f"{single['p99_ms']:.1f}"]])
    emit({"raw_events_per_s": raw, "ours_events_per_s": our, "single": single, "clients": args.clients,
          "batch": args.batch}, table, args.json_out)


if __name__ == "__main__":
    main()
