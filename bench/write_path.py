"""Write path: how many events/s MovieAugur appends, against raw sqlite3 in the same run.

Why: every write goes through `SQLiteEventLog.append` (encode with the codec, hop to a worker
thread, look up the batch's event ids for idempotency, insert row by row through eventsourcing's
recorder, one transaction). The honest yardstick is the least any durable append could cost on this
machine: sqlite3 `executemany` of the *same encoded bytes* into a table in one transaction, with
the same journal mode (WAL) and the same `synchronous` level, measured in the same process and the
same run so that machine load hits both sides alike.

Three raw variants bound the cost:
  raw plain   - a table without any key (the brief's yardstick, used for the ratio);
  raw same    - the log's own schema (primary key on originator id/version), no dedupe;
and the HTTP path (`POST /events` of the aiohttp app, validated, events built, appended) is timed
against the same raw numbers.

Ratios are ours / raw throughput (1.0 = as fast as raw; 0.25 = four times slower).
Each repeat uses fresh files; within a repeat the sides take turns in rounds (rotating order) so
contention from other work on the box hits all of them; ratios are medians of per-repeat ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sqlite3
import tempfile
import time
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
import orjson
from _util import emit, fmt, markdown, say, started_server, summary

from domain.codec import EventCodec
from domain.events import InteractionRecorded, from_unix
from movieaugur.adapters.sqlite_log import SQLiteEventLog

BASE_TS = 1_700_000_000  # fixed, in the past: the HTTP API refuses future timestamps


def make_events(tag: str, n: int) -> list[InteractionRecorded]:
    return [
        InteractionRecorded.new(
            event_id=f"bench:{tag}:{i}",
            user_id=f"u{i % 997}",
            item_type="movie",
            item_id=str(i % 9973),
            timestamp=from_unix(BASE_TS + i),
        )
        for i in range(n)
    ]


def batches_for(size: int, target: int, single: int) -> int:
    if size == 1:
        return single
    return max(2, math.ceil(target / size))


# -- the sides: each opened once, then fed the same batches in interleaved rounds -------------


class Ours:
    """`SQLiteEventLog.append` with domain events in (encoding is part of our path)."""

    def __init__(self, folder: Path):
        self.log = SQLiteEventLog(folder / "events.sqlite")

    async def write(self, batch: list[InteractionRecorded], body: bytes) -> int:
        return (await self.log.append(batch)).appended

    async def close(self) -> None:
        await self.log.close()


def log_pragmas(folder: Path) -> dict[str, object]:
    """The durability settings the log really runs with (read back from its own connection)."""
    log = SQLiteEventLog(folder / "probe.sqlite")
    try:
        with log.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            journal = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            sync = cursor.fetchone()[0]
    finally:
        log.pool.shutdown()
        log.datastore.close()
    return {"journal_mode": journal, "synchronous": sync}


_PLAIN = "CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB)"
_SAME = (
    "CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
    "PRIMARY KEY (originator_id, originator_version))"
)


class Raw:
    """sqlite3 executemany of the already-encoded rows, one transaction per batch, same pragmas."""

    def __init__(self, path: Path, schema: str, synchronous: int, rows: dict[int, list[tuple]]):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={int(synchronous)}")
        self.db.execute(schema)
        self.rows = rows  # id(batch) -> encoded rows

    async def write(self, batch: list[InteractionRecorded], body: bytes) -> int:
        rows = self.rows[id(batch)]
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO events VALUES (?,?,?,?)", rows)
        self.db.execute("COMMIT")
        return len(rows)

    async def close(self) -> None:
        self.db.close()


def encoded_rows(codec: EventCodec, batches: list[list[InteractionRecorded]]) -> tuple[dict[int, list[tuple]], float]:
    """The exact column values the log writes, plus how long encoding took (not part of raw)."""
    started = time.perf_counter()
    out = {}
    for batch in batches:
        rows = []
        for event in batch:
            stored = codec.stored(event)
            rows.append((stored.originator_id.hex, 1, stored.topic, stored.state))
        out[id(batch)] = rows
    return out, time.perf_counter() - started


def legacy_bodies(tag: str, size: int, count: int) -> list[bytes]:
    """`POST /events` bodies; content-derived ids, so every element differs (user, item, time)."""
    bodies = []
    for b in range(count):
        rows = [
            {"user_id": f"{tag}-{b}-{i % 997}", "item_id": str(i % 9973), "object_type": "movie", "timestamp": BASE_TS + i}
            for i in range(size)
        ]
        bodies.append(orjson.dumps(rows))
    return bodies


class Http:
    """`POST /events` (the older API) on the real app, served by aiohttp's TestServer."""

    def __init__(self, folder: Path, roles: frozenset[str]):
        self.folder, self.roles = folder, roles

    async def start(self) -> Http:
        from aiohttp.test_utils import TestClient

        from kernel.settings import Settings
        from movieaugur.app import create_app
        from movieaugur.bootstrap import bootstrap

        self.container = await bootstrap(Settings(data_dir=self.folder))
        self.client = TestClient(await started_server(create_app(self.container, self.roles)))
        await self.client.start_server()
        return self

    async def write(self, batch: list[InteractionRecorded], body: bytes) -> int:
        response = await self.client.post("/events", data=body, headers={"Content-Type": "application/json"})
        payload = await response.json()
        if response.status != 200:
            raise RuntimeError(f"POST /events answered {response.status}: {payload}")
        return payload["appended"]

    async def close(self) -> None:
        await self.client.close()
        await self.container.close()


# -- driver ----------------------------------------------------------------------------------


async def one_repeat(args, repeat: int, size: int, codec: EventCodec, pragmas: dict, roles) -> dict[str, float]:
    """Events/s of each side for one batch size. The batches are split into `rounds` rounds and
    every round runs each side in turn (order rotating), so a burst of disk or CPU contention from
    other work on the box lands on all sides rather than on whichever ran at that moment."""
    n_batches = batches_for(size, args.target_events, args.single_batches)
    batches = [make_events(f"{repeat}:{size}:{b}", size) for b in range(n_batches)]
    bodies = legacy_bodies(f"r{repeat}", size, n_batches)
    rows, encode_s = encoded_rows(codec, batches)
    total = size * n_batches
    with tempfile.TemporaryDirectory(prefix="bench-write-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for name in ("ours", "plain", "same", "http"):
            (folder / name).mkdir()
        sides = {
            "ours": Ours(folder / "ours"),
            "plain": Raw(folder / "plain" / "raw.sqlite", _PLAIN, pragmas["synchronous"], rows),
            "same": Raw(folder / "same" / "raw.sqlite", _SAME, pragmas["synchronous"], rows),
        }
        if args.http:
            sides["http"] = await Http(folder / "http", roles).start()
        seconds = dict.fromkeys(sides, 0.0)
        written = dict.fromkeys(sides, 0)
        try:
            rounds = min(args.rounds, n_batches)
            names = list(sides)
            for r in range(rounds):
                chunk = range(r * n_batches // rounds, (r + 1) * n_batches // rounds)
                shift = (r + repeat) % len(names)
                for name in names[shift:] + names[:shift]:
                    side = sides[name]
                    started = time.perf_counter()
                    for b in chunk:
                        written[name] += await side.write(batches[b], bodies[b])
                    seconds[name] += time.perf_counter() - started
        finally:
            for side in sides.values():
                await side.close()
    for name, count in written.items():
        assert count == total, (name, count, total)
    rates = {name: total / secs for name, secs in seconds.items()}
    rates["encode_us"] = encode_s / total * 1e6
    return rates


async def run(args: argparse.Namespace) -> dict:
    sizes = [int(s) for s in args.sizes.split(",")]
    roles = frozenset(args.roles.split(","))
    codec = EventCodec()
    with tempfile.TemporaryDirectory(prefix="bench-write-", dir=args.dir) as tmp:
        pragmas = log_pragmas(Path(tmp))
    say(f"log runs with {pragmas}; raw uses the same")
    results: dict[int, dict[str, list[float]]] = {s: {} for s in sizes}
    for repeat in range(args.repeats):
        for size in sizes:
            rates = await one_repeat(args, repeat, size, codec, pragmas, roles)
            for name, value in rates.items():
                results[size].setdefault(name, []).append(value)
            # paired ratios: both sides measured in the same rounds
            for name in ("ours", "http"):
                if name in rates:
                    results[size].setdefault(f"ratio_{name}_vs_plain", []).append(rates[name] / rates["plain"])
            results[size].setdefault("ratio_ours_vs_same", []).append(rates["ours"] / rates["same"])
            say(f"repeat {repeat + 1}/{args.repeats} batch {size}: " + ", ".join(
                f"{k}={v:,.2f}" if k.startswith("ratio") else f"{k}={v:,.0f}"
                for k, v in ((k, vals[-1]) for k, vals in results[size].items())))
    out = {"pragmas": pragmas, "roles": sorted(roles), "repeats": args.repeats, "rounds": args.rounds, "sizes": {}}
    for size, values in results.items():
        out["sizes"][str(size)] = {
            "events_per_s": {k: summary(v) for k, v in values.items() if not k.startswith("ratio")},
            "ratios": {k: summary(v) for k, v in values.items() if k.startswith("ratio")},
        }
    return out


def table(out: dict) -> str:
    headers = ["batch", "ours append ev/s", "raw plain ev/s", "ratio", "raw same-schema ev/s", "ratio",
               "HTTP POST /events ev/s", "ratio vs raw plain", "encode µs/ev"]
    nan = {"median": float("nan")}
    rows = []
    for size, entry in out["sizes"].items():
        m = {k: v["median"] for k, v in entry["events_per_s"].items()}
        q = {k: v["median"] for k, v in entry["ratios"].items()}
        rows.append([
            size, fmt(m["ours"]), fmt(m["plain"]), fmt(q["ratio_ours_vs_plain"], 2),
            fmt(m["same"]), fmt(q["ratio_ours_vs_same"], 2),
            fmt(entry["events_per_s"].get("http", nan)["median"]),
            fmt(entry["ratios"].get("ratio_http_vs_plain", nan)["median"], 2),
            fmt(m["encode_us"], 1),
        ])
    return markdown(headers, rows) + (
        f"\n\nMedians of {out['repeats']} repeats; ratios are medians of per-repeat paired ratios "
        f"(sides interleaved in {out['rounds']} rounds); journal_mode={out['pragmas']['journal_mode']}, "
        f"synchronous={out['pragmas']['synchronous']} on both sides; HTTP app roles: {', '.join(out['roles'])}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,1000,20000", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per size (median reported)")
    parser.add_argument("--target-events", type=int, default=4000,
                        help="events per repeat and size (at least two batches)")
    parser.add_argument("--single-batches", type=int, default=300, help="appends per repeat for batch size 1")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaving rounds per repeat (sides alternate within a repeat)")
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip the HTTP path")
    parser.add_argument("--roles", default="commands",
                        help="roles of the HTTP app (add 'projectors' to run projections alongside)")
    parser.add_argument("--dir", help="where temporary files go (default: the system temp dir)")
    parser.add_argument("--json-out", help="also write the JSON summary here")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    emit(out, table(out), args.json_out)


if __name__ == "__main__":
    main()
