"""`movieaugur import movielens` rate, one importer process against several, into either log.

Why: issues 9 and 13 ask the import to reach 50k events/s. Each run is the real CLI in a child
process against a fresh log (embedded: a new data dir; distributed: the running `movieaugur up`
stack, whose Kafka log keeps growing, so each run imports a fresh copy of the folder under new
user ids); events/s counts catalog and ratings appended, from process start to exit (spawning the
importer processes included). The yardstick in the same run: `csv.reader` alone over ratings.csv,
the floor of any importer that reads the file in one process.

Data: ml-latest-small (100,836 ratings + 9,742 movies) and a synthetic MovieLens-layout folder
(--rows ratings over its movies, users of ~150 ratings each), written once into --dir.

Usage: python bench/import_rate.py [--rows 1000000] [--workers 1,2] [--distributed] [--json-out x.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
import numpy as np
from _util import DEFAULT_MOVIELENS, emit, fmt, markdown, say


def _copy_catalog(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("movies.csv", "links.csv"):
        shutil.copy(source / name, target / name)


def synthetic_folder(source: Path, rows: int, target: Path, user_offset: int = 0) -> Path:
    """ratings.csv with `rows` ratings (users 1.., ~150 each, sorted by user like MovieLens) over
    the movies of `source`; movies.csv and links.csv copied."""
    _copy_catalog(source, target)
    with (source / "movies.csv").open(newline="", encoding="utf-8") as handle:
        movies = np.array([int(r["movieId"]) for r in csv.DictReader(handle)])
    rng = np.random.default_rng(5)
    users = np.sort(rng.integers(0, max(1, rows // 150), rows)) + 1 + user_offset
    items = movies[rng.integers(0, movies.size, rows)]
    stars = rng.integers(1, 11, rows) / 2
    times = 1_000_000_000 + np.arange(rows)
    with (target / "ratings.csv").open("w", encoding="utf-8") as out:
        out.write("userId,movieId,rating,timestamp\n")
        out.writelines(f"{u},{m},{s},{t}\n" for u, m, s, t in zip(users.tolist(), items.tolist(), stars.tolist(), times.tolist(), strict=True))
    return target


def with_new_users(source: Path, target: Path, tag: str) -> Path:
    """A copy of a folder whose user ids carry `tag` (a fresh import into a log that has the old)."""
    _copy_catalog(source, target)
    with (source / "ratings.csv").open(newline="", encoding="utf-8") as handle, (target / "ratings.csv").open("w") as out:
        rows = csv.reader(handle)
        out.write(",".join(next(rows)) + "\n")
        out.writelines(f"{tag}{u},{m},{r},{t}\n" for u, m, r, t in rows)
    return target


def count_rows(folder: Path) -> int:
    with (folder / "ratings.csv").open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def csv_floor(folder: Path) -> float:
    """Rows per second of csv.reader alone over ratings.csv."""
    started = time.perf_counter()
    with (folder / "ratings.csv").open(newline="", encoding="utf-8") as handle:
        n = sum(1 for _ in csv.reader(handle)) - 1
    return n / (time.perf_counter() - started)


def run_import(folder: Path, workers: int, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "movieaugur.cli", "import", "movielens", str(folder), "--workers", str(workers)],
                          env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    # The CLI's last line: "imported in …: {part: {appended, duplicates}}" (rich may fold it).
    text = " ".join((done.stdout + done.stderr).split())
    counts = json.loads(text[text.rindex("imported in"):].split(": ", 1)[1])
    appended = sum(part["appended"] for part in counts.values())
    duplicates = sum(part["duplicates"] for part in counts.values())
    if appended < count_rows(folder):
        raise RuntimeError(f"only {appended:,} of {count_rows(folder):,} ratings appended ({duplicates:,} duplicates): not a fresh import")
    return {"seconds": round(seconds, 2), "events": appended + duplicates, "appended": appended, "duplicates": duplicates,
            "events_per_s": round((appended + duplicates) / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    parser.add_argument("--rows", type=int, default=1_000_000, help="ratings in the synthetic folder (0: skip it)")
    parser.add_argument("--workers", default="1,2", help="comma-separated importer process counts")
    parser.add_argument("--distributed", action="store_true", help="import into the running `movieaugur up` stack's Kafka log")
    parser.add_argument("--dir", help="where the synthetic folder and embedded logs go")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="import-bench-"))
    folders = {"ml-latest-small": Path(args.movielens)}
    if args.rows:
        say(f"writing a synthetic folder of {args.rows:,} ratings")
        folders[f"synthetic {args.rows // 1000:,}k"] = synthetic_folder(Path(args.movielens), args.rows, work / "synthetic")
    results, rows = [], []
    run = uuid.uuid4().hex[:6]
    for label, folder in folders.items():
        floor = csv_floor(folder)
        for workers in (int(w) for w in args.workers.split(",")):
            env = dict(os.environ)
            if args.distributed:
                env["MOVIEAUGUR_MODE"] = "distributed"  # the stack's default addresses, as bench/ingest_kafka.py
                tag = f"{run}{len(results)}-"  # new users each run: the Kafka log keeps what earlier runs appended
                target = with_new_users(folder, work / f"users-{tag}", tag)
            else:
                env.update({"MOVIEAUGUR_MODE": "embedded", "MOVIEAUGUR_DATA_DIR": str(work / f"data-{label}-{workers}")})
                target = folder
            say(f"{label}: {workers} importer process(es), {'Kafka' if args.distributed else 'SQLite'}")
            result = run_import(target, workers, env)
            result.update({"data": label, "workers": workers, "log": "kafka" if args.distributed else "sqlite",
                           "csv_reader_rows_per_s": round(floor)})
            results.append(result)
            rows.append([label, result["log"], str(workers), f"{result['appended']:,} + {result['duplicates']:,}", fmt(result["seconds"], 2),
                         fmt(result["events_per_s"]), fmt(floor), f"{result['events_per_s'] / floor:.2f}"])
            say(f"  {result['events_per_s']:,} events/s ({result['seconds']} s)")
    load = os.getloadavg()
    table = markdown(["data", "log", "processes", "events (appended + duplicates)", "seconds", "events/s", "csv.reader rows/s (floor)", "ratio"], rows)
    emit({"benchmark": "import_rate", "load": load, "results": results}, table + f"\n\nload average after: {load[0]:.2f}", args.json_out)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
