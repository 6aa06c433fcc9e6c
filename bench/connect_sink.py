"""Kafka Connect's MongoDB sink into the local stack's FerretDB: documents/s over time, then reads by `_id`.

Why: the catalog and the published recommendations reach MongoDB (FerretDB locally) only through the
sink, and the query service reads them back by `_id` (one, or a page of up to 100). Issue 9 saw the
sink into FerretDB/SQLite slow from ~60 to ~4 documents/s as a collection grew and `$in` reads take
a second. This measures both on whatever backend the running stack's FerretDB uses
(MOVIEAUGUR_FERRETDB_BACKEND=postgresql|sqlite).

Method (against a running local stack; `ensure_stack()` starts one if needed, addresses from the
MOVIEAUGUR_* environment like the other tools):
1. A fresh one-partition topic and a sink connector registered from the project's own template
   (infra/connect/catalog-sink.json: replaceOne-upsert by the `_id` in the value, one task), into a
   fresh collection.
2. `--docs` catalog-like JSON records produced in `--chunk`s (an import's shape).
3. Progress is polled every second without counting the collection (a count makes FerretDB read
   every document, which would slow what is measured): one task on one partition writes ordered
   bulk batches, so the documents land as a prefix of the produced order, and the landed count is
   found by a binary search of `find_one({_id})` probes (index lookups on both backends).
   Rates: first and last quarter of the landed documents, overall, and the per-second series.
4. If the sink has not finished after `--max-seconds`, the connector is removed and the rest
   inserted directly, so the reads below always run on a `--docs`-sized collection.
5. Reads, each `--tries` times (or until `--budget` s per shape), random ids, p50/p99 in ms:
   `find_one({_id})`; `find({_id: {$in: 100 ids}})`; `find({$or: [{_id: ..}, x100]})`;
   100 `find_one`s one after another; 100 `find_one`s concurrently (AsyncMongoClient + gather).
   Plus FerretDB's `explain` of `{_id: x}` and of `$in` (pushdown flag and the backend's plan).

    python bench/connect_sink.py --docs 20000 --json-out /tmp/sink.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import threading
import time
import uuid
from pathlib import Path
from string import Template
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
from _util import REPO, emit, fmt, markdown, say

from infra.local.testing import ensure_stack

TEMPLATE = REPO / "infra" / "connect" / "catalog-sink.json"
GENRES = ["Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Horror",
          "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def catalog_record(run: str, i: int) -> dict[str, Any]:
    """Shaped like the catalog's records (domain/codec.py): a flat event with the view key as `_id`."""
    rnd = random.Random(i)
    return {
        "type": "domain.events:ItemUpserted",
        "schema_version": 1,
        "_id": doc_id(run, i),
        "originator_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "item_id": str(i),
        "kind": "movie",
        "title": f"Benchmark Movie {i} ({1950 + i % 70})",
        "genres": rnd.sample(GENRES, 3),
        "year": 1950 + i % 70,
        "tags": [f"tag{rnd.randrange(500)}" for _ in range(4)],
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-25T12:00:00+00:00"},
    }


def doc_id(run: str, i: int) -> str:
    return f"item:bench-{run}:{i:07d}"


def connector_config(topic: str, mongo_url: str, database: str, collection: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Template(TEMPLATE.read_text()).substitute(
        topic_prefix="unused.", mongo_url=mongo_url, database=database))
    config.update(topics=topic, collection=collection)
    return config


async def create_topic(bootstrap: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)])
        for topic_error in response.topic_errors:
            if topic_error[1] not in (0, 36):
                raise RuntimeError(f"create_topics({name}): {topic_error}")
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, run: str, n: int, chunk: int) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        for start in range(0, n, chunk):
            for i in range(start, min(n, start + chunk)):
                record = catalog_record(run, i)
                await producer.send(topic, json.dumps(record).encode(), key=record["_id"].encode())
            await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def cpu_seconds(pid: int | None, children: bool = False) -> float:
    """utime+stime of a process (and of its live children: PostgreSQL backends), in seconds."""
    if pid is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    if children:
        try:
            pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


class Progress:
    """Landed-prefix length by binary search over `_id` probes (see the module docstring)."""

    def __init__(self, coll, run: str, n: int) -> None:
        self.coll, self.run, self.n = coll, run, n
        self.landed = 0
        self.samples: list[tuple[float, int]] = []
        self.probes = 0

    def exists(self, i: int) -> bool:
        self.probes += 1
        return self.coll.find_one({"_id": doc_id(self.run, i)}, {"_id": 1}) is not None

    def measure(self) -> int:
        lo, hi = self.landed, self.n  # doc lo-1 is known to exist; answer in [lo, n]
        if hi > lo and self.exists(hi - 1):
            lo = hi
        while lo < hi:
            mid = (lo + hi) // 2
            if self.exists(mid):
                lo = mid + 1
            else:
                hi = mid
        self.landed = lo
        return lo

    def watch(self, t0: float, deadline: float, stop: threading.Event) -> None:
        while not stop.is_set():
            landed = self.measure()
            self.samples.append((time.perf_counter() - t0, landed))
            if landed >= self.n or time.perf_counter() >= deadline:
                return
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - t0) % 1.0))


def time_at(samples: list[tuple[float, int]], k: float) -> float | None:
    """When the landed count reached k (linear between the two samples around it)."""
    prev_t, prev_n = 0.0, 0
    for t, n in samples:
        if n >= k:
            if n == prev_n:
                return t
            return prev_t + (t - prev_t) * (k - prev_n) / (n - prev_n)
        prev_t, prev_n = t, n
    return None


def rates(samples: list[tuple[float, int]]) -> dict[str, Any]:
    landed = samples[-1][1] if samples else 0
    out: dict[str, Any] = {"landed": landed}
    if landed < 8:
        return out
    q = landed / 4
    t_first, t_q1, t_q3, t_end = (time_at(samples, k) or 0.0 for k in (1, q, 3 * q, landed))
    out["first_doc_after_s"] = t_first
    out["first_quarter_docs_per_s"] = q / max(1e-9, t_q1 - t_first)
    out["last_quarter_docs_per_s"] = q / max(1e-9, t_end - t_q3)
    out["overall_docs_per_s"] = (landed - 1) / max(1e-9, t_end - t_first)
    out["slowdown_last_vs_first"] = out["last_quarter_docs_per_s"] / out["first_quarter_docs_per_s"]
    per_second = []
    prev_t, prev_n = 0.0, 0
    for t, n in samples:
        per_second.append(round((n - prev_n) / max(1e-9, t - prev_t), 1))
        prev_t, prev_n = t, n
    out["per_sample_docs_per_s"] = per_second
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(call, tries: int, budget: float) -> dict[str, Any]:
    """Run call() up to `tries` times or until `budget` seconds are spent (at least 3 tries)."""
    times: list[float] = []
    started = time.perf_counter()
    for i in range(tries):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
        if i >= 2 and time.perf_counter() - started > budget:
            break
    return {"n": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "mean_ms": statistics.fmean(times)}


def plan_summary(explain: dict[str, Any]) -> dict[str, Any]:
    """FerretDB's explain: whether the filter was pushed down, and the backend's plan nodes."""
    planner = explain.get("queryPlanner", {})
    nodes: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Node Type" in node:
                nodes.append(node["Node Type"] + (f" {node['Index Name']}" if "Index Name" in node else ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(planner)
    return {"filterPushdown": explain.get("filterPushdown"), "plan_nodes": nodes,
            "queryPlanner": json.dumps(planner, default=str)[:600]}


def reads(mongo_url: str, database: str, collection: str, ids: list[str], tries: int, budget: float) -> dict[str, Any]:
    from pymongo import AsyncMongoClient, MongoClient

    out: dict[str, Any] = {}
    rnd = random.Random(7)
    with MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
        coll = client[database][collection]
        db = client[database]

        def one() -> None:
            assert coll.find_one({"_id": rnd.choice(ids)}) is not None

        def in100() -> None:
            wanted = rnd.sample(ids, 100)
            assert len(list(coll.find({"_id": {"$in": wanted}}))) == 100

        def or100() -> None:
            wanted = rnd.sample(ids, 100)
            assert len(list(coll.find({"$or": [{"_id": i} for i in wanted]}))) == 100

        def seq100() -> None:
            wanted = rnd.sample(ids, 100)
            assert all(coll.find_one({"_id": i}) is not None for i in wanted)

        say("reads: find_one")
        out["find_one"] = timed(one, tries, budget)
        say("reads: $in 100")
        out["in_100"] = timed(in100, tries, budget)
        say("reads: $or 100")
        out["or_100"] = timed(or100, tries, budget)
        say("reads: 100 find_one sequential")
        out["find_one_x100_sequential"] = timed(seq100, tries, budget)
        out["explain_id_eq"] = plan_summary(db.command("explain", {"find": collection, "filter": {"_id": ids[0]}}))
        out["explain_in"] = plan_summary(db.command("explain", {"find": collection, "filter": {"_id": {"$in": ids[:3]}}}))

    async def concurrent() -> dict[str, Any]:
        client: AsyncMongoClient = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000)
        try:
            acoll = client[database][collection]
            await asyncio.gather(*(acoll.find_one({"_id": i}) for i in ids[:100]))  # open the pool first
            times: list[float] = []
            started = time.perf_counter()
            for n in range(tries):
                wanted = rnd.sample(ids, 100)
                t = time.perf_counter()
                found = await asyncio.gather(*(acoll.find_one({"_id": i}) for i in wanted))
                times.append((time.perf_counter() - t) * 1000)
                assert all(doc is not None for doc in found)
                if n >= 2 and time.perf_counter() - started > budget:
                    break
            return {"n": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "mean_ms": statistics.fmean(times)}
        finally:
            await client.close()

    say("reads: 100 find_one concurrent")
    out["find_one_x100_concurrent"] = asyncio.run(concurrent())
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pymongo import MongoClient
    from pymongo.errors import BulkWriteError

    stack = ensure_stack()
    backend = stack.ferretdb.running_backend() or stack.cfg.ferretdb_backend
    run_id = uuid.uuid4().hex[:8]
    topic, name, database, collection = f"bench.sink.{run_id}", f"bench-sink-{run_id}", "bench", f"sink_{run_id}"
    say(f"backend {backend}; topic {topic}; {args.docs} docs in chunks of {args.chunk}")
    asyncio.run(create_topic(stack.bootstrap_servers, topic))
    stack.connect.put_connector(name, connector_config(topic, stack.mongo_url, database, collection))
    client: MongoClient = MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
    coll = client[database][collection]
    progress = Progress(coll, run_id, args.docs)
    fdb_pid, connect_pid = stack.ferretdb.pid(), stack.connect.pid()
    pg_pid = stack.postgres.pid() if backend == "postgresql" else None
    cpu0 = (cpu_seconds(fdb_pid), cpu_seconds(connect_pid), cpu_seconds(pg_pid, children=True))
    t0 = time.perf_counter()
    stop = threading.Event()
    watcher = threading.Thread(target=progress.watch, args=(t0, t0 + args.max_seconds, stop), daemon=True)
    watcher.start()
    out: dict[str, Any] = {"backend": backend, "docs": args.docs, "chunk": args.chunk, "max_seconds": args.max_seconds,
                           "tries": args.tries, "budget_s": args.budget, "topic": topic, "collection": f"{database}.{collection}"}
    try:
        out["produce_s"] = asyncio.run(produce(stack.bootstrap_servers, topic, run_id, args.docs, args.chunk))
        say(f"produced in {out['produce_s']:.1f}s; waiting for the sink")
        while watcher.is_alive():
            watcher.join(10)
            say(f"  +{time.perf_counter() - t0:5.0f}s landed {progress.landed}")
        elapsed = time.perf_counter() - t0
        cpu1 = (cpu_seconds(fdb_pid), cpu_seconds(connect_pid), cpu_seconds(pg_pid, children=True))
        out["sink"] = rates(progress.samples)
        out["sink"]["elapsed_s"] = elapsed
        out["sink"]["finished"] = progress.landed >= args.docs
        out["sink"]["probes_per_sample"] = progress.probes / max(1, len(progress.samples))
        out["sink"]["cpu_pct"] = {"ferretdb": 100 * (cpu1[0] - cpu0[0]) / elapsed,
                                  "connect": 100 * (cpu1[1] - cpu0[1]) / elapsed,
                                  "postgres_backends": 100 * (cpu1[2] - cpu0[2]) / elapsed if pg_pid else None}
        out["sink"]["connector_state"] = stack.connect.connector_status(name)
        stack.connect.delete_connector(name)
        if progress.landed < args.docs:
            say(f"sink stopped at {progress.landed}; inserting the other {args.docs - progress.landed} directly")
            t = time.perf_counter()
            for start in range(progress.landed, args.docs, 1000):
                try:
                    coll.insert_many([catalog_record(run_id, i) for i in range(start, min(args.docs, start + 1000))],
                                     ordered=False)
                except BulkWriteError as exc:  # the sink wrote some of them before it was removed
                    if any(e["code"] != 11000 for e in exc.details["writeErrors"]):
                        raise
            out["direct_insert_rest_s"] = time.perf_counter() - t
        count = coll.count_documents({})
        assert count == args.docs, f"collection holds {count}, expected {args.docs}"
        out["collection_count"] = count
        ids = [doc_id(run_id, i) for i in range(args.docs)]
        out["reads"] = reads(stack.mongo_url, database, collection, ids, args.tries, args.budget)
    finally:
        stop.set()
        stack.connect.delete_connector(name)
        if not args.keep:
            client[database].drop_collection(collection)
        client.close()
    return out


def table(out: dict[str, Any]) -> str:
    sink, rd = out["sink"], out["reads"]
    rows = [
        ["sink first quarter", f"{fmt(sink.get('first_quarter_docs_per_s', float('nan')))} docs/s"],
        ["sink last quarter", f"{fmt(sink.get('last_quarter_docs_per_s', float('nan')))} docs/s"],
        ["sink overall", f"{fmt(sink.get('overall_docs_per_s', float('nan')))} docs/s "
                         f"({sink['landed']:,} of {out['docs']:,} in {sink['elapsed_s']:.0f} s)"],
        ["CPU during sink (FerretDB / Connect / PG backends)",
         " / ".join("–" if v is None else f"{v:.0f}%" for v in sink["cpu_pct"].values())],
    ]
    for key, label in (("find_one", "find_one by _id"), ("in_100", "find $in 100 ids"), ("or_100", "find $or of 100 _id"),
                       ("find_one_x100_sequential", "100 find_one, sequential"),
                       ("find_one_x100_concurrent", "100 find_one, concurrent (gather)")):
        r = rd[key]
        rows.append([label, f"p50 {fmt(r['p50_ms'], 2)} ms, p99 {fmt(r['p99_ms'], 2)} ms (n={r['n']})"])
    rows.append(["explain {_id: x}", f"pushdown {rd['explain_id_eq']['filterPushdown']}: {', '.join(rd['explain_id_eq']['plan_nodes']) or '-'}"])
    rows.append(["explain {_id: {$in}}", f"pushdown {rd['explain_in']['filterPushdown']}: {', '.join(rd['explain_in']['plan_nodes']) or '-'}"])
    return f"FerretDB backend: **{out['backend']}**, {out['docs']:,} documents\n\n" + markdown(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="records produced per flush")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop waiting for the sink after this")
    parser.add_argument("--tries", type=int, default=200, help="repeats per read shape")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds at most per read shape (at least 3 tries)")
    parser.add_argument("--keep", action="store_true", help="keep the collection afterwards")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    out = run(args)
    emit(out, table(out), args.json_out)


if __name__ == "__main__":
    main()
