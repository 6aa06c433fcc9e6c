"""Fold-in latency: a recommendations request that folds the user's current interactions into the
current model version at query time (queries/fresh.py → offline/serving.py → offline/training/fold_in.py).

Part 1, ml-latest-small, end to end. An embedded container; MovieLens imported (catalog and 100,836
ratings) and projected. For each model kind — ALS 128 factors / reg 30 / α 5, EASE λ 200, and the
fixed blend (0.4·EDLAE + 0.6·ALS 128/60/20) — the model is fitted on the log's weighted matrix (what
the trainer fits), saved with its serving artifacts, and a ModelPublished appended, so it is the
version that answers. Then GET /v1/users/{id}/recommendations?limit=20 for every MovieLens user (610,
in a shuffled order, one at a time, over a real socket, after a warm-up pass that loads the model;
users none of whose ratings is above 3 stars have no positive weight and get popularity, counted),
`--passes` times: p50/p90/p99/max of the request, and of `runtime.recommend` alone (the fold-in math,
dislike demotion and top-k, in process). MovieLens ratings below 3 stars are negative weights, so
most users also have dislikes: the demotion path runs too.

Part 2, a synthetic catalog of `--items` (100,000) items, the runtime alone (the HTTP and store
costs of part 1 do not grow with the catalog): ALS with 128 random float32 factors, saved and loaded
through the same artifacts; a content index over 100k synthetic catalog documents (20 categories,
2,000 keywords, 500 creators, years). p50/p99 of `runtime.recommend` for users with 10, 100 and
1,000 interactions (with 5 dislikes each in a second row), of `runtime.cold_items` and of
`runtime.similar`.

Every case reports wall time and the CPU time of the serving thread (client, handler, store reads
and math share it): on a shared box the wall percentiles include time spent waiting for a core.

    python bench/fold_in.py [--movielens PATH] [--items 100000] [--passes 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
import numpy as np
from _util import DEFAULT_MOVIELENS, emit, fmt, markdown, say, started_server

from domain.configuration import weights_of
from domain.events import ModelPublished
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.app import create_app
from movieaugur.bootstrap import bootstrap
from offline.serving import ModelRuntime
from offline.training.fold_in import save_serving_artifacts
from offline.training.interaction_matrix import load_interactions
from offline.training.models import ALS, EASE, Blend, Recommender
from queries.http import SERVICE

KINDS: dict[str, Callable[[], Recommender]] = {
    "als": lambda: ALS(factors=128, regularization=30.0, alpha=5.0, iterations=15),
    "ease": lambda: EASE(lam=200.0),
    "blend": lambda: Blend([EASE(lam=200.0, dropout=0.5), ALS(128, 60.0, 20.0)], [0.4, 0.6]),
}


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1], "n": len(ordered)}


async def timed(call: Callable[[], Awaitable[Any]], cpu: list[float] | None = None) -> float:
    """Wall milliseconds of one call; with `cpu`, also appends the CPU milliseconds the calling
    thread spent (client, handler, store reads and math all run on it): the cost of the call
    itself, which a busy machine does not inflate the way it inflates wall time."""
    started, started_cpu = time.perf_counter(), time.thread_time()
    await call()
    if cpu is not None:
        cpu.append(1000 * (time.thread_time() - started_cpu))
    return 1000 * (time.perf_counter() - started)


# -- part 1 --------------------------------------------------------------------------------------


async def movielens(args: argparse.Namespace) -> dict[str, Any]:
    from aiohttp.test_utils import TestClient

    out: dict[str, Any] = {"kinds": {}}
    with tempfile.TemporaryDirectory(prefix="bench-fold-in-", dir=args.dir) as tmp:
        settings = Settings(data_dir=Path(tmp))
        container = await bootstrap(settings)
        t0 = time.perf_counter()
        await operations.load_movielens(container, Path(args.movielens))
        await operations.catch_up(container)
        data = await load_interactions(container.log, weights_of(settings))
        out["setup"] = {"seconds": time.perf_counter() - t0, "users": len(data.users), "items": len(data.items),
                        "positives": int(data.matrix.nnz)}
        say(f"setup: {out['setup']}")
        app = create_app(container, {"queries"})
        client = TestClient(await started_server(app))
        await client.start_server()
        service = app[SERVICE]
        runtime = service.runtime
        users = list(data.users)
        random.Random(7).shuffle(users)
        try:
            for kind, factory in KINDS.items():
                started = time.perf_counter()
                model = factory().fit(data.matrix)
                version = f"v{int(time.time() * 1000)}-{kind}"
                save_serving_artifacts(model.save(settings.models_dir / settings.default_model / version), data.items, data.matrix)
                fit_s = time.perf_counter() - started
                await container.log.append([ModelPublished.new(
                    model=settings.default_model, model_version=version, algorithm=kind, params=model.params, metrics={},
                )])
                await operations.catch_up(container)
                service.versions.forget()  # the query side's version cache: read the new version now

                folded: dict[str, bool] = {}

                async def request(user: str, version: str = version, folded: dict[str, bool] = folded) -> None:
                    response = await client.get(f"/v1/users/{user}/recommendations?limit=20")
                    assert response.status == 200, response.status
                    body = await response.json()
                    # no published lists here: a non-fallback answer of this version is a fold-in
                    folded[user] = body["model_version"] == version and body["fallback"] is None

                for user in users:  # warm-up: loads the version, touches every user's rows once
                    await request(user)
                http: list[float] = []
                math: list[float] = []
                http_cpu: list[float] = []
                math_cpu: list[float] = []
                for _ in range(args.passes):
                    for user in users:
                        http.append(await timed(lambda user=user: request(user), http_cpu))
                weights = {u: await service.fresh.weights(u) for u in users}
                for _ in range(args.passes):
                    for user in users:
                        math.append(await timed(lambda user=user, version=version, weights=weights: runtime.recommend(
                            settings.default_model, version, weights[user], 50, None, ()), math_cpu))
                out["kinds"][kind] = {"version": version, "fit_and_save_seconds": fit_s,
                                      "users_folded_in": sum(folded.values()), "users": len(users),
                                      "http_ms": percentiles(http), "http_cpu_ms": percentiles(http_cpu),
                                      "runtime_recommend_ms": percentiles(math), "runtime_recommend_cpu_ms": percentiles(math_cpu)}
                say(f"{kind}: " + "  ".join(f"{k} {v}" for k, v in out["kinds"][kind].items() if k.endswith("_ms")))
        finally:
            await client.close()
            await container.close()
    return out


# -- part 2 --------------------------------------------------------------------------------------


def synthetic_catalog(n: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    genres = [f"genre{g}" for g in range(20)]
    docs = {}
    for i in range(n):
        docs[f"movie:{i}"] = {
            "title": f"Title {i}",
            "categories": [genres[g] for g in rng.choice(20, size=int(rng.integers(1, 4)), replace=False)],
            "keywords": [f"kw{k}" for k in rng.integers(0, 2000, size=int(rng.integers(2, 8)))],
            "creators": [f"person{int(rng.integers(500))}"],
            "release_date": str(int(rng.integers(1950, 2026))),
        }
    return docs


async def large(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    n = args.items
    out: dict[str, Any] = {"items": n, "factors": 128}
    with tempfile.TemporaryDirectory(prefix="bench-fold-in-100k-", dir=args.dir) as tmp:
        settings = Settings(data_dir=Path(tmp))
        import scipy.sparse as sp

        model = ALS(factors=128, regularization=30.0, alpha=5.0)
        model.item_factors = (rng.standard_normal((n, 128)) * 0.1).astype(np.float32)
        model.user_factors = np.zeros((0, 128), dtype=np.float32)
        model.n_items = n
        keys = [f"movie:{i}" for i in range(n)]
        # positives for every other item: the rest are cold for this model (content slots' candidates)
        warm = np.arange(0, n, 2)
        X = sp.csr_matrix((np.ones(warm.size, np.float32), (rng.integers(0, 5000, warm.size), warm)), shape=(5000, n))
        save_serving_artifacts(model.save(settings.models_dir / "default" / "v1"), keys, X)
        runtime = ModelRuntime(settings)
        started = time.perf_counter()
        assert await runtime.model("default", "v1") is not None or await asyncio.sleep(5) or runtime.loaded("default", "v1")
        out["load_seconds"] = time.perf_counter() - started
        docs = synthetic_catalog(n, rng)
        started = time.perf_counter()
        runtime.catalog_changed(docs)
        await runtime.warm_up()
        index = await runtime.content_index()
        assert index is not None
        out["content_index"] = {"build_seconds": time.perf_counter() - started, "features": index.model.dimensions,
                                "nnz": int(index.V.nnz)}
        say(f"100k: load {out['load_seconds']:.2f}s, content index {out['content_index']}")
        calls = args.calls
        for size in (10, 100, 1000):
            for dislikes in (0, 5):
                ms: list[float] = []
                cpu: list[float] = []
                for _ in range(calls):
                    items = rng.choice(n, size=size, replace=False)
                    weights = {f"movie:{i}": 1.0 for i in items[: size - min(dislikes, size - 1)]}
                    weights.update({f"movie:{i}": -3.0 for i in items[size - min(dislikes, size - 1):]})
                    ms.append(await timed(lambda weights=weights: runtime.recommend("default", "v1", weights, 50, None, ()), cpu))
                out[f"recommend history={size} dislikes={dislikes}"] = {**percentiles(ms), "cpu": percentiles(cpu)}
                say(f"recommend history={size} dislikes={dislikes}: {percentiles(ms)}")
        ms, cpu = [], []
        for _ in range(calls):
            weights = {f"movie:{i}": 1.0 for i in rng.choice(n, size=100, replace=False)}
            ms.append(await timed(lambda weights=weights: runtime.cold_items("default", "v1", weights, 16, None, ()), cpu))
        out["cold_items history=100 (50k cold candidates)"] = {**percentiles(ms), "cpu": percentiles(cpu)}
        ms, cpu = [], []
        for _ in range(calls):
            key = f"movie:{int(rng.integers(n))}"
            ms.append(await timed(lambda key=key: runtime.similar(key, 20, None), cpu))
        out["similar"] = {**percentiles(ms), "cpu": percentiles(cpu)}
        say(f"cold {out['cold_items history=100 (50k cold candidates)']}, similar {out['similar']}")
    return out


def table(out: dict[str, Any]) -> str:
    rows = []
    for kind, e in out.get("movielens", {}).get("kinds", {}).items():
        for label, wall, cpu in (("GET …/recommendations?limit=20", "http_ms", "http_cpu_ms"),
                                 ("runtime.recommend (math only)", "runtime_recommend_ms", "runtime_recommend_cpu_ms")):
            w, c = e[wall], e[cpu]
            rows.append([f"ml-latest-small, {kind}", label, fmt(w["p50"], 2), fmt(w["p99"], 2), fmt(w["max"], 1),
                         fmt(c["p50"], 2), fmt(c["p99"], 2)])
    big = out.get("large", {})
    for name, e in big.items():
        if isinstance(e, dict) and "p50" in e:
            rows.append([f"{big['items']:,} items, ALS 128", f"runtime.{name}", fmt(e["p50"], 2), fmt(e["p99"], 2),
                         fmt(e["max"], 1), fmt(e["cpu"]["p50"], 2), fmt(e["cpu"]["p99"], 2)])
    return markdown(["data, model", "call", "wall p50 ms", "wall p99 ms", "wall max ms", "CPU p50 ms", "CPU p99 ms"], rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=3, help="requests per MovieLens user")
    parser.add_argument("--calls", type=int, default=300, help="calls per synthetic case")
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--dir", default=None, help="where temporary state goes")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if not args.skip_movielens:
        out["movielens"] = await movielens(args)
    if not args.skip_large:
        out["large"] = await large(args)
    emit(out, table(out), args.json)


if __name__ == "__main__":
    asyncio.run(main())
