"""What recording exposures costs serving: wrk against the embedded demo with an A/B experiment,
once with MOVIEAUGUR_EXPOSURE_LOG on and once off, same route, same users, same machine.

The experiment's two variants both name the demo's model, so the only difference between the
runs is the exposure path (queue a RecommendationsServed event per list, appended in the
background every MOVIEAUGUR_EXPOSURE_FLUSH_SECONDS). Each run starts its own `movieaugur demo` on
a fresh data dir (serve_wrk.py's helpers); the plain route without `experiment` is measured in
both runs as the yardstick. After the "on" run the script checks the exposures reached the log:
`GET /v1/experiments` must count them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
from _util import REPO, emit, markdown, say
from serve_wrk import free_port, run_wrk, users_of, wait_ready

EXPERIMENT = {"bench": {"a": {"model": "default", "share": 0.5}, "b": {"model": "default", "share": 0.5}}}
ROUTES = {
    "plain": "/v1/users/{user}/recommendations?limit=20",
    "experiment": "/v1/users/{user}/recommendations?limit=20&experiment=bench",
}


def exposures_counted(url: str) -> int:
    with urllib.request.urlopen(f"{url}/v1/experiments", timeout=10) as response:
        [bench] = json.load(response)["experiments"]
    return sum(v["exposures"] for v in bench["variants"])


def one_run(exposure_log: bool, seconds: int, connections: int, threads: int) -> dict[str, dict[str, float]]:
    folder = tempfile.mkdtemp(prefix="movieaugur-bench-")
    port = free_port()
    env = {**os.environ, "MOVIEAUGUR_EXPERIMENTS": json.dumps(EXPERIMENT),
           "MOVIEAUGUR_EXPOSURE_LOG": "true" if exposure_log else "false"}
    with open(Path(folder) / "server.log", "w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("movieaugur")), "demo", "--port", str(port), "--data-dir", str(Path(folder) / "state")],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        users = users_of(url)
        results = {}
        for name, path in ROUTES.items():
            say(f"exposure log {'on' if exposure_log else 'off'}: wrk {name} ({seconds}s)")
            results[name] = run_wrk(url, path, users, seconds, connections, threads)
        if exposure_log:
            served = results["experiment"]
            deadline = time.monotonic() + 30
            while exposures_counted(url) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            results["experiment"] = {**served, "exposures_counted": exposures_counted(url)}
        return results
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    runs = {state: one_run(state == "on", args.seconds, args.connections, args.threads) for state in ("off", "on")}
    rows = [[state, route, f"{r['rps']:,.0f}", f"{r.get('p50_ms', 0):.2f}", f"{r.get('p99_ms', 0):.2f}", str(r["non_2xx"])]
            for state, results in runs.items() for route, r in results.items()]
    table = markdown(["exposure log", "route", "req/s", "p50 ms", "p99 ms", "non-2xx"], rows)
    emit({"seconds": args.seconds, "connections": args.connections, "runs": runs}, table,
         str(args.json) if args.json else None)


if __name__ == "__main__":
    main()
