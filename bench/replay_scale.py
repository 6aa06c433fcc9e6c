"""`movieaugur replay` of a large log: how long a view takes to rebuild from 20 million events.

Why: issue 10 asks a synthetic 20M-event replay under 10 minutes. A replay is how a view is rebuilt
after a change or a loss, so its time at scale says whether "drop and replay" is a real option.
Both steps are the real CLI in a child process: `import movielens --workers 2` of a synthetic
MovieLens-layout folder (bench/import_rate.py `synthetic_folder`: ~150 ratings per user over the
sample's 9,742 movies), then `replay NAME` for each projection asked, each timed from process start
to exit. Embedded: a fresh data dir (SQLite log and views). --distributed: the running
`movieaugur stack up` (Kafka log, Redis views); the log keeps what earlier runs appended, so the
replay reads those events too and the table counts what the CLI reports it read.

Disk: about 0.5 KB per event in the embedded log (10 GB at 20M), removed afterwards.

Usage: python bench/replay_scale.py [--events 20000000] [--projections popularity,history] [--distributed]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
from _util import DEFAULT_MOVIELENS, emit, fmt, markdown, say
from import_rate import run_import, synthetic_folder, with_new_users

_REPORT = re.compile(r"(\w+): (\d+) events in ([\d.]+)s")


def run_replay(name: str, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "movieaugur.cli", "replay", name], env=env,
                          capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"replay {name} failed ({done.returncode}): {done.stderr[-2000:]}")
    found = _REPORT.search(" ".join((done.stdout + done.stderr).split()))
    if found is None:
        raise RuntimeError(f"replay {name}: no report in its output: {done.stdout[-500:]}")
    events, inner = int(found.group(2)), float(found.group(3))
    return {"projection": name, "events": events, "seconds": round(seconds, 1), "replay_seconds": inner,
            "events_per_s": round(events / inner)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", default=DEFAULT_MOVIELENS)
    parser.add_argument("--events", type=int, default=20_000_000, help="ratings in the synthetic log")
    parser.add_argument("--projections", default="popularity,history")
    parser.add_argument("--workers", type=int, default=2, help="importer processes")
    parser.add_argument("--distributed", action="store_true", help="into the running stack's Kafka log and Redis")
    parser.add_argument("--dir", help="where the synthetic folder and the embedded data dir go")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="replay-bench-"))
    try:
        say(f"writing a synthetic folder of {args.events:,} ratings")
        folder = synthetic_folder(Path(args.movielens), args.events, work / "synthetic")
        env = dict(os.environ)
        if args.distributed:
            env["MOVIEAUGUR_MODE"] = "distributed"
            tag = f"r{uuid.uuid4().hex[:6]}-"
            folder = with_new_users(folder, work / "users", tag)
        else:
            env.update({"MOVIEAUGUR_MODE": "embedded", "MOVIEAUGUR_DATA_DIR": str(work / "data")})
        say(f"importing with {args.workers} processes into {'Kafka' if args.distributed else 'SQLite'}")
        imported = run_import(folder, args.workers, env)
        say(f"  {imported['events_per_s']:,} events/s ({imported['seconds']} s)")
        results, rows = [], []
        for name in args.projections.split(","):
            say(f"replaying {name}")
            result = run_replay(name, env)
            results.append(result)
            rows.append([name, "kafka → redis" if args.distributed else "sqlite → sqlite", f"{result['events']:,}",
                         fmt(result["replay_seconds"], 1), f"{result['replay_seconds'] / 60:.1f}",
                         fmt(result["events_per_s"]), fmt(result["seconds"], 1)])
            say(f"  {result['events']:,} events in {result['replay_seconds']} s ({result['events_per_s']:,}/s)")
        load = os.getloadavg()
        table = markdown(["projection", "log → views", "events", "replay s", "minutes", "events/s",
                          "process s (start to exit)"], rows)
        emit({"benchmark": "replay_scale", "load": load, "import": imported, "results": results},
             table + f"\n\nimport: {imported['appended']:,} events in {imported['seconds']} s "
             f"({imported['events_per_s']:,}/s, {args.workers} processes); load average after: {load[0]:.2f}",
             args.json_out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
