"""Projection replay: events/s each projection rebuilds its view at, against a plain loop.

Why: `movieaugur replay NAME` (projections/runner.py `Projector.replay`) is how a view is rebuilt
after a change, so its speed bounds how cheaply we can "drop and replay". Our path reads the log
through the `EventLog` port, decodes every record into a domain event (eventsourcing's Mapper),
asks the pure projection for its `Effect`, and hands the batch to the `ViewStore`, which applies it
and the tracking position in one transaction on a worker thread.

The raw yardstick is what a hand-written script would do to get the *same* view: read the same
rows (rowid, JSON bytes) from the same SQLite log with sqlite3, `orjson.loads` them, and run the
same upserts (`INSERT ... ON CONFLICT DO UPDATE`, the adapter's own SQL and schema, and a position
row) in one transaction per batch of the same size. Neither side writes per-event duplicate guards:
the embedded log cannot hold two events with one id (SQLiteEventLog.unique_event_ids). The two
views are checked to hold the same rows and score sums, so the ratio compares equal work.

With the local stack's Redis up (never started or stopped here), the popularity and history
projections are also replayed into `RedisViewStore` (unique key prefix, deleted afterwards) against
a raw redis pipeline (MULTI/EXEC per batch) doing ZINCRBY / ZADD GT for the same events.

Data: MovieLens ratings + movies imported with offline/ingest/movielens.py `import_movielens` into a
temporary log (the dataset folder is only read). Ratios are ours / raw throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
import orjson
from _util import DEFAULT_MOVIELENS, emit, fmt, markdown, ratio, say, summary

from domain.configuration import weights_of
from domain.events import INTERACTIONS, ITEMS
from domain.weights import ActionWeights
from kernel.gc_tuning import tune_for_streaming
from kernel.settings import Settings
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.adapters.sqlite_views import _ADD, _MAX, _PUT, _SCHEMA, SQLiteViewStore
from offline.ingest.movielens import import_movielens
from projections.catalog import CatalogProjection
from projections.history import HistoryProjection
from projections.popularity import SECONDS_PER_DAY, PopularityProjection
from projections.runner import Projector

_METADATA = ("title", "description", "release_date", "categories", "keywords", "creators", "links")


def unix(ts: dict) -> int:
    return int(datetime.fromisoformat(ts["_data_"]).timestamp())


# -- the raw loop: same rows in, same rows out ----------------------------------------------------


def raw_rows(log_db: sqlite3.Connection, stream: str, batch: int):
    start = 1
    while True:
        rows = log_db.execute(
            f"SELECT rowid, state FROM {stream}_events WHERE rowid >= ? ORDER BY rowid LIMIT ?", (start, batch)
        ).fetchall()
        if not rows:
            return
        yield rows
        start = rows[-1][0] + 1


def raw_replay(name: str, log_path: Path, views_path: Path, weights: ActionWeights, batch: int) -> tuple[float, int]:
    log_db = sqlite3.connect(log_path)
    db = sqlite3.connect(views_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute("CREATE TABLE IF NOT EXISTS positions (name TEXT PRIMARY KEY, next INTEGER)")
    stream = ITEMS if name == "catalog" else INTERACTIONS
    started = time.perf_counter()
    events = 0
    for rows in raw_rows(log_db, stream, batch):
        db.execute("BEGIN")
        for _rowid, state in rows:
            rec = orjson.loads(state)
            if name == "popularity":
                if rec["action"] not in weights:
                    continue
                weight = weights.weight(rec["action"], rec["value"])
                if weight == 0.0:
                    continue
                # No duplicate guard: the embedded log cannot hold two events with one id
                # (SQLiteEventLog.unique_event_ids), so neither side checks for copies.
                kind, item, day = rec["item_type"], rec["item_id"], unix(rec["timestamp"]) // SECONDS_PER_DAY
                db.execute(_ADD, ("popularity", f"{kind}:all", item, weight))
                db.execute(_ADD, ("popularity", f"{kind}:d{day}", item, weight))
            elif name == "history":
                db.execute(_MAX, ("history", rec["user_id"], f"{rec['item_type']}:{rec['item_id']}",
                                  float(unix(rec["timestamp"]))))
            else:
                doc = {"id": rec["item_id"], "object_type": rec["item_type"]}
                doc.update((k, rec[k]) for k in _METADATA if rec.get(k) is not None)
                doc["updated_at"] = unix(rec["timestamp"])
                db.execute(_PUT, ("items", f"{rec['item_type']}:{rec['item_id']}", orjson.dumps(doc)))
        db.execute(
            "INSERT INTO positions VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET next = excluded.next",
            (f"{name}:{stream}/0", rows[-1][0] + 1),
        )
        db.execute("COMMIT")
        events += len(rows)
    elapsed = time.perf_counter() - started
    log_db.close()
    db.close()
    return elapsed, events


def view_fingerprint(path: Path, space: str) -> tuple:
    """Rows and score sum (or document bytes) of one space: equal work on both sides."""
    db = sqlite3.connect(path)
    try:
        z = db.execute("SELECT count(*), round(total(score), 3) FROM zset WHERE space = ?", (space,)).fetchone()
        d = db.execute("SELECT count(*), total(length(body)) FROM docs WHERE space = ?", (space,)).fetchone()
        return (*z, *d)
    finally:
        db.close()


# -- ours -----------------------------------------------------------------------------------------


def projection_for(name: str, weights: ActionWeights):
    return {"popularity": PopularityProjection(weights), "history": HistoryProjection(),
            "catalog": CatalogProjection()}[name]


async def ours_replay(name: str, log: SQLiteEventLog, store, weights: ActionWeights, batch: int) -> tuple[float, int]:
    report = await Projector(projection_for(name, weights), log, store, batch_size=batch).replay()
    return report.seconds, report.events


async def read_only(log: SQLiteEventLog, stream: str, batch: int) -> tuple[float, int]:
    """Just the log's read + decode, no projection or store: where the time goes."""
    started = time.perf_counter()
    start, events = 0, 0
    while True:
        result = await log.read(stream, 0, start, batch)
        if not result.events:
            break
        events += len(result.events)
        start = result.next_offset
    return time.perf_counter() - started, events


# -- Redis ----------------------------------------------------------------------------------------


async def redis_available(url: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
        return None
    except Exception as error:
        return f"redis at {url} not reachable ({error!r}); Redis part skipped (the stack is not started here)"
    finally:
        await client.aclose()


async def delete_prefix(client, prefix: str) -> int:
    doomed = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(doomed), 500):
        await client.delete(*doomed[i : i + 500])
    return len(doomed)


async def raw_redis(name: str, client, prefix: str, log_path: Path, weights: ActionWeights, batch: int) -> tuple[float, int]:
    log_db = sqlite3.connect(log_path)
    started = time.perf_counter()
    events = 0
    for rows in raw_rows(log_db, INTERACTIONS, batch):
        pipe = client.pipeline(transaction=True)
        for _, state in rows:
            rec = orjson.loads(state)
            if name == "popularity":
                weight = weights.weight(rec["action"], rec["value"]) if rec["action"] in weights else 0.0
                if weight == 0.0:
                    continue
                day = unix(rec["timestamp"]) // SECONDS_PER_DAY
                pipe.zincrby(f"{prefix}z:popularity:{rec['item_type']}:all", weight, rec["item_id"])
                pipe.zincrby(f"{prefix}z:popularity:{rec['item_type']}:d{day}", weight, rec["item_id"])
            else:
                pipe.zadd(f"{prefix}z:history:{rec['user_id']}",
                          {f"{rec['item_type']}:{rec['item_id']}": unix(rec["timestamp"])}, gt=True)
        pipe.hset(f"{prefix}t:{name}", f"{INTERACTIONS}/0", rows[-1][0] + 1)
        await pipe.execute()
        events += len(rows)
    elapsed = time.perf_counter() - started
    log_db.close()
    return elapsed, events


# -- driver ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict:
    names = args.projections.split(",")
    weights = weights_of(Settings(data_dir=Path(tempfile.gettempdir())))
    out: dict = {"dataset": args.movielens, "batch_size": args.batch, "repeats": args.repeats, "sqlite": {}, "redis": {}}
    with tempfile.TemporaryDirectory(prefix="bench-projection-", dir=args.dir) as tmp:
        folder = Path(tmp)
        log_path = folder / "events.sqlite"
        log = SQLiteEventLog(log_path)
        started = time.perf_counter()
        imported = await import_movielens(log, args.movielens)
        out["import"] = {part: r.appended for part, r in imported.items()}
        out["import"]["seconds"] = time.perf_counter() - started
        say(f"imported {out['import']} ")
        samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
        for repeat in range(args.repeats):
            for name in names:
                stream = ITEMS if name == "catalog" else INTERACTIONS
                sides = ["ours", "raw", "read"] if repeat % 2 == 0 else ["read", "raw", "ours"]
                views = {}
                for side in sides:
                    views[side] = folder / f"views-{name}-{repeat}-{side}.sqlite"
                    if side == "ours":
                        store = SQLiteViewStore(views[side])
                        secs, events = await ours_replay(name, log, store, weights, args.batch)
                        await store.close()
                    elif side == "raw":
                        secs, events = raw_replay(name, log_path, views[side], weights, args.batch)
                    else:
                        secs, events = await read_only(log, stream, args.batch)
                    samples[name].setdefault(side, []).append(events / secs)
                    samples[name].setdefault(f"{side}_events", []).append(events)
                space = {"popularity": "popularity", "history": "history", "catalog": "items"}[name]
                fp_ours, fp_raw = view_fingerprint(views["ours"], space), view_fingerprint(views["raw"], space)
                if fp_ours != fp_raw:
                    raise AssertionError(f"{name}: views differ, ours {fp_ours} raw {fp_raw}")
                for side in ("ours", "raw"):
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{views[side]}{suffix}").unlink(missing_ok=True)
                say(f"repeat {repeat + 1}/{args.repeats} {name}: ours={samples[name]['ours'][-1]:,.0f} "
                    f"raw={samples[name]['raw'][-1]:,.0f} read+decode={samples[name]['read'][-1]:,.0f} ev/s; view {fp_ours}")
        for name, sides in samples.items():
            med = {side: summary(v) for side, v in sides.items() if not side.endswith("_events")}
            out["sqlite"][name] = {
                "events": int(sides["ours_events"][0]),
                "events_per_s": med,
                "ratio_ours_vs_raw": ratio(med["ours"]["median"], med["raw"]["median"]),
            }

        skip = None if args.redis else "disabled with --no-redis"
        if skip is None:
            skip = await redis_available(args.redis_url)
        if skip:
            out["redis"] = {"skipped": skip}
            say(skip)
        else:
            await redis_part(args, log, log_path, weights, out)
        await log.close()
    return out


async def redis_part(args, log: SQLiteEventLog, log_path: Path, weights: ActionWeights, out: dict) -> None:
    import redis.asyncio as aioredis

    from movieaugur.adapters.redis_views import RedisViewStore

    client = aioredis.from_url(args.redis_url)
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        for repeat in range(args.redis_repeats):
            for name in ("popularity", "history"):
                order = ["ours", "raw"] if repeat % 2 == 0 else ["raw", "ours"]
                for side in order:
                    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
                    try:
                        if side == "ours":
                            store = RedisViewStore(args.redis_url, prefix=prefix)
                            try:
                                secs, events = await ours_replay(name, log, store, weights, args.batch)
                            finally:
                                await store.close()
                        else:
                            secs, events = await raw_redis(name, client, prefix, log_path, weights, args.batch)
                        samples.setdefault(name, {}).setdefault(side, []).append(events / secs)
                    finally:
                        await delete_prefix(client, prefix)
                say(f"redis repeat {repeat + 1}/{args.redis_repeats} {name}: "
                    + ", ".join(f"{k}={v[-1]:,.0f}" for k, v in samples[name].items()))
    finally:
        await client.aclose()
    for name, sides in samples.items():
        med = {side: summary(v) for side, v in sides.items()}
        out["redis"][name] = {"events_per_s": med, "ratio_ours_vs_raw": ratio(med["ours"]["median"], med["raw"]["median"])}


def table(out: dict) -> str:
    rows = []
    for name, e in out["sqlite"].items():
        m = {k: v["median"] for k, v in e["events_per_s"].items()}
        rows.append([f"{name} → SQLite", f"{e['events']:,}", fmt(m["ours"]), fmt(m["raw"]),
                     fmt(e["ratio_ours_vs_raw"], 2), fmt(m["read"])])
    if "skipped" in out["redis"]:
        note = f"\n\nRedis: {out['redis']['skipped']}"
    else:
        note = ""
        for name, e in out["redis"].items():
            m = {k: v["median"] for k, v in e["events_per_s"].items()}
            rows.append([f"{name} → Redis", "", fmt(m["ours"]), fmt(m["raw"]), fmt(e["ratio_ours_vs_raw"], 2), ""])
    headers = ["projection → store", "events", "ours replay ev/s", "raw loop ev/s", "ratio", "log read+decode only ev/s"]
    return markdown(headers, rows) + (
        f"\n\nMedians of {out['repeats']} repeats (Redis: {out.get('redis_repeats', '')}); batch {out['batch_size']}; "
        f"import of the dataset took {out['import']['seconds']:.1f} s." + note
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS, help="ml-latest-small folder (read only)")
    parser.add_argument("--projections", default="popularity,history,catalog")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000, help="events per batch (the Projector's default)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--redis-repeats", type=int, default=3)
    parser.add_argument("--no-redis", dest="redis", action="store_false")
    parser.add_argument("--dir", help="where temporary files go (default: the system temp dir)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    out["redis_repeats"] = args.redis_repeats
    emit(out, table(out), args.json_out)


if __name__ == "__main__":
    tune_for_streaming()  # as every `movieaugur` command does; both sides of the comparison run with it
    main()
