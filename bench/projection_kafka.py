"""Projections in distributed mode: replay from Kafka into Redis, against a raw consumer, same run.

Why: in distributed mode a view is as fresh as its projector is fast, and a replay of a large log
is only practical if it runs near the speed of simply reading the topic. The raw yardstick is a
plain aiokafka consumer reading the same interactions topic with read_committed and decoding every
JSON value (orjson): the floor of any projector in Python. Ours is `Projector.replay` (read through
the EventLog port, decode into domain events, pure effect, one Lua script per batch into a shadow
copy in Redis, atomic swap). Both read the same topic in the same run.

Data: MovieLens ratings imported into fresh topics (a unique topic prefix; deleted afterwards is
left to Kafka's retention — the prefix is printed). Needs the local stack (`movieaugur stack up`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
import orjson
from _util import DEFAULT_MOVIELENS, emit, markdown, say

from domain.configuration import weights_of
from domain.events import INTERACTIONS
from kernel.gc_tuning import tune_for_streaming
from kernel.settings import Settings
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.redis_views import RedisViewStore
from offline.ingest.movielens import import_movielens
from projections.registry import build_projections
from projections.runner import Projector


async def raw_consumer(settings: Settings) -> tuple[float, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        topic = settings.topic(INTERACTIONS)
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        started = time.perf_counter()
        count = 0
        done: set[TopicPartition] = set()
        while len(done) < len(tps) and time.perf_counter() - started < 120:
            batch = await consumer.getmany(*tps, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    orjson.loads(record.value)
                    count += 1
                if records and records[-1].offset + 2 >= ends[tp]:  # the last record (or its commit marker)
                    done.add(tp)
        return time.perf_counter() - started, count
    finally:
        await consumer.stop()


async def ours(settings: Settings, name: str, batch: int) -> tuple[float, int]:
    log = KafkaEventLog(settings)
    store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}bench:")
    projection = build_projections(weights_of(settings))[name]
    try:
        started = time.perf_counter()
        report = await Projector(projection, log, store, batch_size=batch).replay()
        return time.perf_counter() - started, report.events
    finally:
        async for key in store.redis.scan_iter(match=f"{store.prefix}*", count=1000):
            await store.redis.delete(key)
        await store.close()
        await log.close()


async def load(settings: Settings, movielens: str) -> int:
    log = KafkaEventLog(settings)
    try:
        await log.ensure_topics()
        started = time.perf_counter()
        results = await import_movielens(log, Path(movielens))
        say(f"imported in {time.perf_counter() - started:.1f}s: {results}")
        return sum(r.appended for r in results.values())
    finally:
        await log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    parser.add_argument("--projections", default="popularity,history,matrix")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = Settings(mode="distributed", topic_prefix=prefix)
    say(f"topic prefix {prefix}")
    asyncio.run(load(settings, args.movielens))
    rows, results = [], {}
    for name in args.projections.split(","):
        raw_rates, our_rates = [], []
        for _ in range(args.repeats):
            seconds, count = asyncio.run(raw_consumer(settings))
            raw_rates.append(count / seconds)
            seconds, events = asyncio.run(ours(settings, name, args.batch))
            if events != count:  # a replay that stopped early would pass for a fast one
                raise SystemExit(f"{name}: the replay read {events:,} events, the raw consumer {count:,}")
            our_rates.append(events / seconds)
        raw, our = max(raw_rates), max(our_rates)
        results[name] = {"raw_events_per_s": raw_rates, "ours_events_per_s": our_rates}
        rows.append([name, f"{our:,.0f}", f"{raw:,.0f}", f"{our / raw:.2f}×"])
        say(f"{name}: ours {our:,.0f}/s raw {raw:,.0f}/s")
    table = markdown(["projection", "ours (events/s, best)", "raw consumer + decode", "ratio"], rows)
    emit({"prefix": prefix, "results": results, "pid": os.getpid()}, table, args.json_out)


if __name__ == "__main__":
    tune_for_streaming()  # as every `movieaugur` command does; both sides of the comparison run with it
    main()
