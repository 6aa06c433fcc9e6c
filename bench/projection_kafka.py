"""Projections in distributed mode: replay from Kafka into Redis, against a raw consumer, same run.

Why: in distributed mode a view is as fresh as its projector is fast, and a replay of a large log
is only practical if it runs near the speed of simply reading the topic. Two yardsticks read the
same interactions topic with read_committed and decode every JSON value (orjson): the issue's plain
aiokafka consumer (default fetch settings, one message at a time), and a tuned batch consumer
(`getmany` of 5,000 records, 4 MB per partition fetch): the floor of any projector in Python.
Ours is `Projector.replay` (read through the EventLog port, decode into domain events, pure
effect, one Lua script per batch into a shadow copy in Redis, atomic swap). All three read the
same topic in the same run.

Data: MovieLens ratings imported into fresh topics (a unique topic prefix; deleted afterwards is
left to Kafka's retention — the prefix is printed). Needs the local stack (`movieaugur stack up`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
import orjson
from _util import DEFAULT_MOVIELENS, emit, markdown, say
from import_rate import synthetic_folder

from domain.configuration import weights_of
from domain.events import INTERACTIONS
from kernel.gc_tuning import tune_for_streaming
from kernel.settings import Settings
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.redis_views import RedisViewStore
from offline.ingest.movielens import import_movielens
from projections.registry import build_projections
from projections.runner import Projector


@contextlib.asynccontextmanager
async def reader_at_start(settings: Settings, **options: Any) -> AsyncIterator[tuple[Any, dict[Any, int]]]:
    """A plain read_committed aiokafka consumer assigned every interactions partition from offset
    0, and each partition's end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", **options)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(INTERACTIONS), p) for p in range(settings.kafka_partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        yield consumer, ends
    finally:
        await consumer.stop()


async def raw_consumer(settings: Settings) -> tuple[float, int]:
    """The tuned yardstick: `getmany` of 5,000 records, 4 MB per partition fetch."""
    async with reader_at_start(settings, max_partition_fetch_bytes=4 * 1024 * 1024) as (consumer, ends):
        started = time.perf_counter()
        count = 0
        done: set[Any] = set()
        while len(done) < len(ends) and time.perf_counter() - started < 120:
            batch = await consumer.getmany(*ends, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    orjson.loads(record.value)
                    count += 1
                if records and records[-1].offset + 2 >= ends[tp]:  # the last record (or its commit marker)
                    done.add(tp)
        return time.perf_counter() - started, count


async def plain_consumer(settings: Settings) -> tuple[float, int]:
    """The issue's own yardstick: a plain aiokafka consumer with its default fetch settings,
    read_committed, taking one message at a time (`async for`) and decoding each JSON value."""
    async with reader_at_start(settings) as (consumer, ends):
        by_partition = {tp.partition: end for tp, end in ends.items()}
        started = time.perf_counter()
        count = 0
        left = {partition for partition, end in by_partition.items() if end > 0}
        async for record in consumer:
            orjson.loads(record.value)
            count += 1
            if record.offset + 2 >= by_partition[record.partition]:  # its last (or its commit marker)
                left.discard(record.partition)
                if not left:
                    break
        return time.perf_counter() - started, count


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
    parser.add_argument("--synthetic", type=int, default=0, metavar="ROWS",
                        help="import ROWS synthetic ratings over the MovieLens movies instead (users sorted, as MovieLens)")
    parser.add_argument("--projections", default="popularity,history,matrix")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = Settings(mode="distributed", topic_prefix=prefix)
    say(f"topic prefix {prefix}")
    with tempfile.TemporaryDirectory() as folder:
        source = args.movielens
        if args.synthetic:
            source = str(synthetic_folder(Path(args.movielens), args.synthetic, Path(folder)))
        asyncio.run(load(settings, source))
    rows, results = [], {}
    for name in args.projections.split(","):
        raw_rates, plain_rates, our_rates = [], [], []
        for _ in range(args.repeats):
            seconds, count = asyncio.run(raw_consumer(settings))
            raw_rates.append(count / seconds)
            seconds, plain_count = asyncio.run(plain_consumer(settings))
            if plain_count != count:
                raise SystemExit(f"the plain consumer read {plain_count:,} events, the batch consumer {count:,}")
            plain_rates.append(plain_count / seconds)
            seconds, events = asyncio.run(ours(settings, name, args.batch))
            if events != count:  # a replay that stopped early would pass for a fast one
                raise SystemExit(f"{name}: the replay read {events:,} events, the raw consumer {count:,}")
            our_rates.append(events / seconds)
        raw, plain, our = max(raw_rates), max(plain_rates), max(our_rates)
        results[name] = {"raw_events_per_s": raw_rates, "plain_events_per_s": plain_rates, "ours_events_per_s": our_rates}
        rows.append([name, f"{our:,.0f}", f"{plain:,.0f}", f"{our / plain:.2f}×", f"{raw:,.0f}", f"{our / raw:.2f}×"])
        say(f"{name}: ours {our:,.0f}/s plain {plain:,.0f}/s batch {raw:,.0f}/s")
    table = markdown(["projection", "ours (events/s, best)", "plain consumer + decode", "ratio",
                      "batch consumer + decode", "ratio"], rows)
    emit({"prefix": prefix, "results": results, "pid": os.getpid()}, table, args.json_out)


if __name__ == "__main__":
    tune_for_streaming()  # as every `movieaugur` command does; both sides of the comparison run with it
    main()
