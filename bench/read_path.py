"""Read path: requests/s of the two hottest GET routes against the view-store call underneath.

Why: a read in MovieAugur is HTTP (aiohttp, middlewares, query-param validation with pydantic) →
`QueryService` (catalog hydration, seen-item filtering, popularity fallback) → `ViewStore`
(SQLite on a worker thread). The raw yardstick is the one store call that holds the answer:
  GET /v1/popularity/movie              vs  store.top("popularity", {"movie:all": 1}, 0, limit)
  GET /v1/users/{id}/recommendations    vs  store.get_docs("recommendations", ["default:{id}"])
Two more columns locate the cost between those ends:
  service calls  - the full sequence of store calls the service makes for that route, in process
                   (popularity: top + catalog get_docs; recommendations: model doc, the user's whole
                   history for the seen filter, the list, catalog get_docs), no HTTP;
  GET /healthz   - (in the table's note) the HTTP floor: aiohttp server + client + middlewares
                   with no store call at all;
  bare sqlite3   - the raw call's SQL on a plain sqlite3 connection in the calling thread (no
                   worker-thread hop, no eventsourcing datastore), i.e. SQLite's own speed.

Data: the demo sample (movieaugur.operations.load_sample: 600 users, ~29k interactions),
projected with catch_up, a model trained with a small budget and published, projected again.
Requests are issued one at a time (or `--concurrency` at a time) by an aiohttp client in the same
process, so the HTTP numbers include the client's own cost; both run on the same 2 cores.
Ratios are ours / raw throughput; medians over repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
import orjson
from _util import emit, fmt, markdown, ratio, say, started_server, summary

from kernel.settings import Settings
from movieaugur import operations
from movieaugur.app import create_app
from movieaugur.bootstrap import bootstrap
from projections.catalog import SPACE as ITEMS
from projections.history import SPACE as HISTORY
from projections.popularity import SPACE as POPULARITY
from projections.recommendations import SPACE as RECS


async def rate(call, n: int, concurrency: int) -> float:
    """Calls per second of an async callable taking the call's index."""
    if concurrency <= 1:
        started = time.perf_counter()
        for i in range(n):
            await call(i)
        return n / (time.perf_counter() - started)
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


def rate_sync(call, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        call(i)
    return n / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> dict:
    from aiohttp.test_utils import TestClient

    out: dict = {"requests": args.requests, "repeats": args.repeats, "limit": args.limit,
                 "concurrency": args.concurrency, "routes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-read-", dir=args.dir) as tmp:
        settings = Settings(data_dir=Path(tmp))
        container = await bootstrap(settings)
        t0 = time.perf_counter()
        loaded = await operations.load_sample(container)
        await operations.catch_up(container)
        report = await operations.train(container, time_budget=args.train_budget, force=True)
        await operations.catch_up(container)
        out["setup"] = {"loaded": loaded, "seconds": time.perf_counter() - t0,
                        "published": report.published, "algorithm": report.algorithm}
        say(f"setup: {out['setup']}")
        store = container.store
        model = settings.default_model
        user_ids = [f"user-{i + 1}" for i in range(loaded["users"])]
        with_recs = [u for u, d in zip(user_ids, await store.get_docs(RECS, [f"{model}:{u}" for u in user_ids]), strict=True) if d]
        if not with_recs:
            raise RuntimeError("no published recommendations after training; nothing to read")
        out["users_with_recommendations"] = len(with_recs)
        users = with_recs
        limit = args.limit

        # the raw calls
        async def raw_popularity(i: int) -> None:
            await store.top(POPULARITY, {"movie:all": 1.0}, 0, limit)

        async def raw_recs(i: int) -> None:
            await store.get_docs(RECS, [f"{model}:{users[i % len(users)]}"])

        # what the service asks the store for, without HTTP
        async def service_popularity(i: int) -> None:
            top = await store.top(POPULARITY, {"movie:all": 1.0}, 0, limit)
            await store.get_docs(ITEMS, [f"movie:{m}" for m, _ in top])

        async def service_recs(i: int) -> None:
            user = users[i % len(users)]
            await store.top(HISTORY, {user: 1.0}, 0, 100_000)
            [doc] = await store.get_docs(RECS, [f"{model}:{user}"])
            keys = [f"{r['item_type']}:{r['item_id']}" for r in doc["items"][:limit]]
            await store.get_docs(ITEMS, keys)

        # bare sqlite3, same SQL as the raw call, no thread hop
        bare = sqlite3.connect(settings.views_path)

        def bare_popularity(i: int) -> None:
            bare.execute(
                "SELECT member, score FROM zset WHERE space = ? AND key = ? ORDER BY score DESC, member DESC LIMIT ? OFFSET ?",
                (POPULARITY, "movie:all", limit, 0),
            ).fetchall()

        def bare_recs(i: int) -> None:
            rows = bare.execute("SELECT key, body FROM docs WHERE space = ? AND key IN (?)",
                                (RECS, f"{model}:{users[i % len(users)]}")).fetchall()
            [orjson.loads(body) for _, body in rows]

        client = TestClient(await started_server(create_app(container, {"queries"})))
        await client.start_server()

        async def http_popularity(i: int) -> None:
            response = await client.get(f"/v1/popularity/movie?limit={limit}")
            assert response.status == 200, response.status
            await response.read()

        async def http_recs(i: int) -> None:
            response = await client.get(f"/v1/users/{users[i % len(users)]}/recommendations?limit={limit}")
            assert response.status == 200, response.status
            await response.read()

        async def http_floor(i: int) -> None:
            response = await client.get("/healthz")
            assert response.status == 200, response.status
            await response.read()

        routes = {
            "GET /v1/popularity/movie": (http_popularity, service_popularity, raw_popularity, bare_popularity, "store.top"),
            "GET /v1/users/{id}/recommendations": (http_recs, service_recs, raw_recs, bare_recs, "store.get_docs"),
        }
        samples: dict[str, dict[str, list[float]]] = {r: {} for r in routes}
        try:
            for http, service, raw, bare_call, _ in routes.values():  # warm-up
                await http(0), await service(0), await raw(0), bare_call(0)
            floor = []
            for repeat in range(args.repeats):
                floor.append(await rate(http_floor, args.requests, args.concurrency))
                for route, (http, service, raw, bare_call, _) in routes.items():
                    sides = ["http", "service", "raw", "bare"]
                    if repeat % 2:
                        sides.reverse()
                    for side in sides:
                        if side == "bare":
                            value = rate_sync(bare_call, args.requests)
                        else:
                            call = {"http": http, "service": service, "raw": raw}[side]
                            value = await rate(call, args.requests, args.concurrency)
                        samples[route].setdefault(side, []).append(value)
                    say(f"repeat {repeat + 1}/{args.repeats} {route}: " + ", ".join(
                        f"{k}={v[-1]:,.0f}/s" for k, v in samples[route].items()))
        finally:
            await client.close()
            bare.close()
            await container.close()
    out["http_floor_healthz"] = summary(floor)
    for route, sides in samples.items():
        med = {side: summary(v) for side, v in sides.items()}
        out["routes"][route] = {
            "raw_call": routes[route][4],
            "requests_per_s": med,
            "ratio_http_vs_raw": ratio(med["http"]["median"], med["raw"]["median"]),
            "ratio_service_vs_raw": ratio(med["service"]["median"], med["raw"]["median"]),
            "ratio_raw_vs_bare_sqlite": ratio(med["raw"]["median"], med["bare"]["median"]),
        }
    return out


def table(out: dict) -> str:
    rows = []
    for route, e in out["routes"].items():
        m = {k: v["median"] for k, v in e["requests_per_s"].items()}
        rows.append([route, fmt(m["http"]), fmt(m["service"]), f"{fmt(m['raw'])} ({e['raw_call']})",
                     fmt(e["ratio_http_vs_raw"], 2), fmt(m["bare"]), fmt(e["ratio_raw_vs_bare_sqlite"], 2)])
    headers = ["route", "HTTP req/s", "service store calls /s", "raw store call /s", "ratio HTTP/raw",
               "bare sqlite3 /s", "ratio raw/bare"]
    return markdown(headers, rows) + (
        f"\n\nMedians of {out['repeats']} repeats × {out['requests']} requests, limit={out['limit']}, "
        f"concurrency {out['concurrency']}; HTTP floor (GET /healthz, same client) "
        f"{fmt(out['http_floor_healthz']['median'])} req/s; model: {out['setup']['algorithm']} "
        f"({out['users_with_recommendations']} users with lists)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per repeat and side")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20, help="list length asked for")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    parser.add_argument("--train-budget", type=float, default=5.0, help="seconds the trainer may spend")
    parser.add_argument("--dir", help="where temporary files go (default: the system temp dir)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    emit(out, table(out), args.json_out)


if __name__ == "__main__":
    main()
