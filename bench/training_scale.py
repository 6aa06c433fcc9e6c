"""Training at scale: snapshot build, load, select, gate, fit, publish times and peak RSS per log size.

Why: `movieaugur train` must stay within 8 GB on a 2-core box at 20M interactions (issue 13), and
the columnar snapshot (offline/training/snapshot.py) must load the matrix at >= 1M events/s. This
benchmark runs the pipeline's own stages (offline/training/pipeline.py: load from the snapshot,
hold-out split, memory-bounded selection, the quality gate's fit + evaluation, the final fit, and
publishing into an embedded SQLite log) on synthetic MovieLens-like logs, one child process per size
and engine, and reports each stage's seconds and the peak RSS after it (ru_maxrss of the child;
for Spark also the JVM's VmHWM).

The yardstick: the raw `implicit` ALS fit (`AlternatingLeastSquares.fit` with the same
hyper-parameters on the same matrix, no wrapper) in the same child, right after our fit.

Data (`generate`): power-law user activity and item popularity with taste clusters (70 % of a
user's events fall in the user's cluster, so a model can beat popularity), actions view / rating /
like / click / dislike / watchlist with star values for ratings, 0.5 % redelivered duplicates.
Users = n/160, items = max(5000, n/800): 1M → 6,250 × 5,000; 5M → 31,250 × 6,250; 20M → 125,000 × 25,000.

How it gets into the snapshot:
- sizes <= --via-log (default 1M): appended to an embedded SQLite log through `SQLiteEventLog.append`
  (the import path), then `SnapshotBuilder` reads it through the log port (the real build), and the
  log scan `load_interactions` is timed as the old path;
- larger sizes: written straight into snapshot segments (the same schema, a manifest as if the
  events sat at offsets 1..n of one partition), because the import and build paths run at tens of
  thousands of events/s and would take an hour at 20M; their rates are measured at the 1M size.

Usage: python bench/training_scale.py [--sizes 1000000,5000000] [--engines implicit,spark] [--json-out x.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _util import emit, fmt, markdown, say

SEED = 13
BASE_TS = 1_600_000_000
ACTIONS = ["view", "rating", "like", "click", "dislike", "watchlist"]
ACTION_P = [0.6, 0.2, 0.1, 0.05, 0.03, 0.02]
STARS = np.arange(1, 11) / 2.0  # 0.5 … 5.0
STARS_P = np.array([1, 1, 2, 3, 5, 8, 12, 14, 10, 8], dtype=np.float64)
CLUSTERS = 40
FIXED_ALS = {"factors": 64, "regularization": 30.0, "alpha": 5.0, "iterations": 10}


def shape_of(n: int) -> tuple[int, int]:
    return max(1000, n // 160), max(5000, n // 800)


def _power_law(rng: np.random.Generator, count: int, size: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return rng.choice(count, size=size, p=weights / weights.sum())


def generate(n: int, seed: int = SEED) -> dict[str, Any]:
    """n synthetic interactions as snapshot columns (numpy and arrow), in log order."""
    rng = np.random.default_rng(seed)
    n_users, n_items = shape_of(n)
    users = rng.permutation(n_users)[_power_law(rng, n_users, n, 0.7)]
    per_cluster = n_items // CLUSTERS
    own = _power_law(rng, per_cluster, n, 1.0) * CLUSTERS + users % CLUSTERS
    anywhere = rng.permutation(n_items)[_power_law(rng, n_items, n, 0.9)]
    items = np.where(rng.random(n) < 0.7, own, anywhere).astype(np.int64)
    actions = rng.choice(len(ACTIONS), size=n, p=ACTION_P)
    values = np.where(actions == 1, rng.choice(STARS, size=n, p=STARS_P / STARS_P.sum()), np.nan)
    times = BASE_TS + rng.integers(0, 2 * 365 * 86_400, n)
    ids = np.arange(n, dtype=np.int64)
    # 0.5 % redelivered: a later row repeats an earlier event whole (same id, same content).
    dup = np.sort(rng.choice(np.arange(1, n), size=n // 200, replace=False))
    src = (dup * rng.random(dup.size)).astype(np.int64)
    for column in (users, items, actions, values, times, ids):
        column[dup] = column[src]
    return {"n": n, "users": users, "items": items, "actions": actions, "values": values, "times": times, "ids": ids,
            "n_users": n_users, "n_items": n_items}


def _dictionary(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(labels, pa.string()))


def segment_table(data: dict[str, Any], start: int, stop: int) -> pa.Table:
    from offline.training.snapshot import SCHEMA

    sl = slice(start, stop)
    n = stop - start
    ids = pc.binary_join_element_wise("syn:", pc.cast(pa.array(data["ids"][sl]), pa.string()), "")
    values = data["values"][sl]
    return pa.Table.from_arrays([
        pa.array(np.zeros(n, np.int32)),
        pa.array(np.arange(start + 1, stop + 1, dtype=np.int64)),  # offsets as SQLite notification ids
        ids,
        _dictionary(data["users"][sl], [f"u{i}" for i in range(data["n_users"])]),
        _dictionary(data["items"][sl], [f"movie:{i}" for i in range(data["n_items"])]),
        _dictionary(data["actions"][sl], ACTIONS),
        pa.array(values, mask=np.isnan(values)),
        pa.array(data["times"][sl].astype(np.int64)),
        _dictionary(np.zeros(n, np.int64), ["synthetic"]),
    ], schema=SCHEMA)


def write_snapshot(folder: Path, data: dict[str, Any], segment_rows: int = 1_000_000) -> None:
    """Segments + manifest straight from the columns, as the builder would have written them."""
    from offline.training.snapshot import Manifest, write_segment

    folder.mkdir(parents=True, exist_ok=True)
    manifest = Manifest()
    n = data["n"]
    for start in range(0, n, segment_rows):
        stop = min(n, start + segment_rows)
        manifest.segments.append(write_segment(folder, segment_table(data, start, stop), 0, start + 1, stop + 1))
    manifest.positions = {0: n + 1}
    manifest.write(folder, lambda _stage: None)


def events_of(data: dict[str, Any], start: int, stop: int) -> list:
    from domain.events import InteractionRecorded, from_unix

    out = []
    for i in range(start, stop):
        action = ACTIONS[int(data["actions"][i])]
        value = float(data["values"][i]) if action == "rating" else None
        out.append(InteractionRecorded.new(
            event_id=f"syn:{int(data['ids'][i])}", timestamp=from_unix(int(data["times"][i])),
            user_id=f"u{int(data['users'][i])}", item_type="movie", item_id=str(int(data["items"][i])),
            action=action, value=value, source="synthetic",
        ))
    return out


# -- one child: one size, one engine --------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jvm_peak_mb() -> float:
    """Peak RSS (VmHWM) of this process's child processes (the Spark JVM), in MB."""
    peak = 0.0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak += int(line.split()[1]) / 1024
            except OSError:
                pass
    return peak


async def child(
    n: int, engine: str, work: Path, budget: float, via_log: int, repeats: int, quality_check: bool = False
) -> dict[str, Any]:
    from domain.configuration import weights_of
    from kernel.settings import Settings
    from movieaugur.adapters.sqlite_log import SQLiteEventLog
    from offline.training.interaction_matrix import load_interactions
    from offline.training.models import Popularity
    from offline.training.pipeline import (
        DEFAULT_MEMORY_BUDGET,
        _choose,
        _engine,
        _holdout_metrics,
        _publish,
        gate_split,
        publishable,
    )
    from offline.training.snapshot import SnapshotBuilder, load_matrix

    weights = weights_of(Settings())
    out: dict[str, Any] = {"size": n, "engine": engine, "seconds": {}, "rss_mb": {}}
    seconds, rss = out["seconds"], out["rss_mb"]

    def stage(name: str, started: float) -> None:
        seconds[name] = round(time.perf_counter() - started, 3)
        rss[name] = round(rss_mb(), 1)
        say(f"  {n:,} {engine}: {name} {seconds[name]:.1f}s, peak RSS {rss[name]:,.0f} MB")

    mark = time.perf_counter()
    data = generate(n)
    out["users"], out["items"] = data["n_users"], data["n_items"]
    stage("generate", mark)
    log = SQLiteEventLog(work / "events.sqlite")
    snapshot = work / "snapshot"
    if n <= via_log:
        mark = time.perf_counter()
        for start in range(0, n, 20_000):
            await log.append(events_of(data, start, min(n, start + 20_000)))
        stage("import (log append)", mark)
        del data
        mark = time.perf_counter()
        built = await SnapshotBuilder(snapshot, log).update()
        stage("snapshot build", mark)
        out["built_events"] = built.appended
        mark = time.perf_counter()
        scanned = await load_interactions(log, weights)
        stage("load (log scan, old path)", mark)
        del scanned
    else:
        mark = time.perf_counter()
        write_snapshot(snapshot, data)
        del data
        stage("snapshot write (direct)", mark)
    mark = time.perf_counter()
    loaded = await load_matrix(snapshot, log, weights)
    stage("load (snapshot)", mark)
    matrix = loaded.data
    out["nnz"], out["events"], out["duplicates"] = int(matrix.matrix.nnz), matrix.events, matrix.duplicates
    out["load_events_per_s"] = round(loaded.rows / seconds["load (snapshot)"])

    mark = time.perf_counter()
    gate = gate_split(matrix.matrix, 0)
    train, test = gate.train, gate.test
    out["held_out_share"] = round(gate.held_out_share, 4)
    stage("split", mark)

    def quiet(message: str) -> None:
        say(f"    {message}")

    with _engine(engine, {"master": "local[2]", "driver_memory": "6g", "work_dir": work / "spark"} if engine == "spark" else None) as make:
        mark = time.perf_counter()
        if engine == "implicit":
            choice = _choose(train, budget, 0, quiet, engine, DEFAULT_MEMORY_BUDGET)
        else:
            choice = _choose(train, 0, 0, quiet, engine, DEFAULT_MEMORY_BUDGET)
        stage("select", mark)
        out["selected"] = {"kind": choice.kind, "params": choice.params}
        params = dict(FIXED_ALS)  # the fit stages use one fixed ALS so engines and sizes compare
        mark = time.perf_counter()
        candidate = make("als", params, "default").fit(train)
        out["gate_users"] = len(gate.rows)
        metrics = _holdout_metrics(candidate, train, test, gate.rows)
        baseline = _holdout_metrics(Popularity().fit(train), train, test, gate.rows)
        stage("gate (fit on 80 % + evaluate)", mark)
        mark = time.perf_counter()
        published_model = publishable(candidate, gate, matrix.matrix, lambda: None)  # None: the fit below is it
        out["refit"] = published_model is None
        if published_model is not None:
            stage("refresh gated users", mark)
        del candidate
        out["ndcg@100"], out["popularity ndcg@100"] = round(metrics["ndcg@100"], 4), round(baseline["ndcg@100"], 4)
        # Ours and the raw fit take turns (machine load hits both alike); medians are reported.
        fits, raws = [], []
        for _ in range(repeats):
            mark = time.perf_counter()
            model = make("als", params, "default").fit(matrix.matrix)
            fits.append(time.perf_counter() - mark)
            mark = time.perf_counter()
            raw_fit(matrix.matrix, params)
            raws.append(time.perf_counter() - mark)
        seconds["fit"], seconds["raw implicit fit (yardstick)"] = round(median(fits), 3), round(median(raws), 3)
        rss["fit"] = round(rss_mb(), 1)
        out["fit_runs"], out["raw_fit_runs"] = [round(x, 2) for x in fits], [round(x, 2) for x in raws]
        say(f"  {n:,} {engine}: fit {fits} vs raw implicit {raws}, peak RSS {rss['fit']:,.0f} MB")
        if engine == "spark":
            out["jvm_peak_mb"] = round(jvm_peak_mb(), 1)
        if quality_check:
            out["sampled_gate_quality"] = sampled_gate_quality(matrix.matrix, params, make)
            say(f"  {n:,} {engine}: sampled gate quality {out['sampled_gate_quality']}")
    if published_model is not None:
        model = published_model
    for per_user, name in ((100, "publish"), (0, "publish (no user lists)")):
        publish_log = SQLiteEventLog(work / f"published-{per_user}.sqlite")
        mark = time.perf_counter()
        published = await _publish(publish_log, model, matrix, "default", "v1", per_user, lambda _m: None)
        stage(name, mark)
        await publish_log.close()
        if per_user:
            out["published_users"] = published
    await log.close()
    out["peak_rss_mb"] = round(rss_mb(), 1)
    return out


def sampled_gate_quality(X: Any, params: dict[str, Any], make: Any) -> dict[str, Any]:
    """Does publishing the gated model (no refit) cost quality? Nested check: an outer hold-out
    (contract §5's split of a seeded sample of GATE_USERS users, seed 99) is kept out of everything;
    on the rest, (a) the pipeline's sampled gate, its candidate published with the gated users
    refreshed, against (b) a refit on all of the rest; both scored on the outer hold-out."""
    from offline.training.pipeline import _holdout_metrics, gate_split, publishable

    outer = gate_split(X, 99)
    inner = gate_split(outer.train, 0)
    if inner.refit:
        return {"skipped": f"the gate holds out {inner.held_out_share:.1%} here, so the pipeline refits anyway"}
    mark = time.perf_counter()
    gated = publishable(make("als", params, "default").fit(inner.train), inner, outer.train, lambda: make("als", params, "default").fit(outer.train))
    gated_s = time.perf_counter() - mark
    mark = time.perf_counter()
    refit = make("als", params, "default").fit(outer.train)
    refit_s = time.perf_counter() - mark
    ndcg = {name: round(_holdout_metrics(model, outer.train, outer.test, outer.rows)["ndcg@100"], 4)
            for name, model in (("gated, not refit", gated), ("refit on everything", refit))}
    return {"outer_users": len(outer.rows), "inner_held_out_share": round(inner.held_out_share, 4),
            "inner_refit": inner.refit, "ndcg@100": ndcg, "seconds": {"gated": round(gated_s, 1), "refit": round(refit_s, 1)}}


def raw_fit(X: Any, params: dict[str, Any]) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        AlternatingLeastSquares(factors=params["factors"], regularization=params["regularization"], alpha=params["alpha"],
                                iterations=params["iterations"], random_state=0,
                                calculate_training_loss=False).fit(X, show_progress=False)


# -- the parent: a child per size and engine, then the table --------------------------------------


def run_child(n: int, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        out = Path(work) / "result.json"
        # The import and build paths do not depend on the engine: measured once, in the implicit run.
        via_log = args.via_log if engine == "implicit" else 0
        repeats = args.repeats if engine == "implicit" and n <= args.repeat_max else 1
        command = [sys.executable, __file__, "--child", str(n), "--engine-child", engine, "--work", work,
                   "--budget", str(args.budget), "--via-log", str(via_log), "--repeats", str(repeats),
                   "--child-out", str(out), *(["--quality-check"] if args.quality_check else [])]
        done = subprocess.run(command, timeout=args.timeout)
        if done.returncode != 0 or not out.is_file():
            return {"size": n, "engine": engine, "error": f"exit {done.returncode}"}
        result = json.loads(out.read_text())
        return result


STAGES = ["import (log append)", "snapshot build", "load (log scan, old path)", "snapshot write (direct)", "load (snapshot)",
          "select", "gate (fit on 80 % + evaluate)", "refresh gated users", "fit", "raw implicit fit (yardstick)", "publish",
          "publish (no user lists)"]


def end_to_end(result: dict[str, Any], lists: bool = True) -> float:
    """Snapshot to published with the hyper-parameters fixed (what `train --budget 0` runs): load,
    the gate's split, fit and evaluation, then the final fit where the pipeline refits (else the
    gated users' refresh), and publishing (with the per-user lists, or without:
    MOVIEAUGUR_RECOMMENDATIONS_PER_USER=0). The "fit" stage is timed always, for the fit / raw ratio."""
    seconds = result["seconds"]
    final = "fit" if result.get("refit", True) else "refresh gated users"
    publish = "publish" if lists else "publish (no user lists)"
    return sum(seconds.get(k, 0.0) for k in ("load (snapshot)", "split", "gate (fit on 80 % + evaluate)", final, publish))


def table(results: list[dict[str, Any]]) -> str:
    headers = ["size", "engine", "users × items", "nnz", *[f"{s} s" for s in STAGES], "load ev/s", "fit / raw",
               "held out (refit)", "end to end s (fixed params)", "vs raw load + raw fit",
               "end to end s, no user lists", "vs raw", "NDCG@100 (pop.)", "peak RSS MB", "JVM peak MB"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['size']:,}", r["engine"], r["error"]] + [""] * (len(headers) - 3))
            continue
        s = r["seconds"]
        raw = s["load (snapshot)"] + s["raw implicit fit (yardstick)"]
        rows.append([
            f"{r['size']:,}", r["engine"], f"{r['users']:,} × {r['items']:,}", f"{r['nnz']:,}",
            *[fmt(s[k], 1) if k in s else "–" for k in STAGES],
            fmt(r["load_events_per_s"]), f"{s['fit'] / s['raw implicit fit (yardstick)']:.2f}",
            f"{r.get('held_out_share', 0):.1%} ({'yes' if r.get('refit', True) else 'no'})",
            fmt(end_to_end(r), 1), f"{end_to_end(r) / raw:.2f}x", fmt(end_to_end(r, lists=False), 1),
            f"{end_to_end(r, lists=False) / raw:.2f}x",
            f"{r['ndcg@100']:.4f} ({r['popularity ndcg@100']:.4f})", fmt(r["peak_rss_mb"]), fmt(r.get("jvm_peak_mb", float("nan"))),
        ])
    return markdown(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,5000000", help="comma-separated interaction counts (20000000 too: ~30 min)")
    parser.add_argument("--engines", default="implicit,spark")
    parser.add_argument("--spark-max", type=int, default=5_000_000, help="largest size the Spark engine runs at")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for model selection (implicit)")
    parser.add_argument("--via-log", type=int, default=1_000_000, help="sizes up to this go through the SQLite log")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--repeats", type=int, default=3, help="fits (ours, raw) per size, for the median")
    parser.add_argument("--repeat-max", type=int, default=5_000_000, help="larger sizes fit once")
    parser.add_argument("--dir", help="where temporary files go")
    parser.add_argument("--json-out")
    parser.add_argument("--quality-check", action="store_true",
                        help="also compare the gated model (published without a refit) with a refit, on an outer hold-out")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine-child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(child(args.child, args.engine_child, Path(args.work), args.budget, args.via_log, args.repeats,
                                 args.quality_check))
        Path(args.child_out).write_text(json.dumps(result))
        return
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        for engine in args.engines.split(","):
            if engine == "spark" and n > args.spark_max:
                continue
            say(f"{n:,} interactions, {engine}")
            results.append(run_child(n, engine, args))
    emit({"benchmark": "training_scale", "fixed_als": FIXED_ALS, "results": results}, table(results), args.json_out)


if __name__ == "__main__":
    main()
