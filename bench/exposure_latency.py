"""What recording exposures costs serving: wrk against the embedded demo with an A/B experiment,
with MOVIEAUGUR_EXPOSURE_LOG on and off, same route, same users, same machine.

The experiment's two variants both name the demo's model, so the only difference between the
servers is the exposure path (each served list queued; one RecommendationsServed event per flush,
appended in the background every MOVIEAUGUR_EXPOSURE_FLUSH_SECONDS). Both servers (`movieaugur
demo` on fresh data dirs, serve_wrk.py's helpers) run at once and are measured alternately, round
after round, so a busy machine's noise falls on both alike; the plain route without `experiment`
is the yardstick. At the end the script checks the exposures reached the log: `GET
/v1/experiments` counts them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


class Server:
    """`movieaugur demo` on a fresh data dir, with the experiment and the exposure log on or off."""

    def __init__(self, exposure_log: bool):
        self.folder = tempfile.mkdtemp(prefix="movieaugur-bench-")
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "MOVIEAUGUR_EXPERIMENTS": json.dumps(EXPERIMENT),
               "MOVIEAUGUR_EXPOSURE_LOG": "true" if exposure_log else "false"}
        with open(Path(self.folder) / "server.log", "w") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("movieaugur")), "demo", "--port", self.url.rsplit(":", 1)[1],
                 "--data-dir", str(Path(self.folder) / "state")],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
            )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="off and on measured alternately, this many times")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    servers = {"off": Server(False), "on": Server(True)}
    try:
        for server in servers.values():
            wait_ready(server.url, server.process)
        users = users_of("")
        runs: dict[str, dict[str, list[dict[str, float]]]] = {s: {r: [] for r in ROUTES} for s in servers}
        for round_ in range(args.rounds):
            for state, server in servers.items():
                for route, path in ROUTES.items():
                    say(f"round {round_ + 1}: exposure log {state}, {route} ({args.seconds}s)")
                    runs[state][route].append(run_wrk(server.url, path, users, args.seconds, args.connections, args.threads))
        deadline = time.monotonic() + 30
        while exposures_counted(servers["on"].url) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        counted = exposures_counted(servers["on"].url)
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for state, routes in runs.items():
        for route, results in routes.items():
            rows.append([state, route] + [f"{statistics.median(r[k] for r in results):,.2f}" for k in ("rps", "p50_ms", "p99_ms")]
                        + [str(sum(r["non_2xx"] for r in results))])
    served = sum(r["rps"] * args.seconds for r in runs["on"]["experiment"])
    table = markdown(["exposure log", "route", "req/s (median)", "p50 ms", "p99 ms", "non-2xx"], rows)
    table += f"\n\nexposures counted by GET /v1/experiments: {counted:,} of about {served:,.0f} lists served\n"
    emit({"seconds": args.seconds, "rounds": args.rounds, "connections": args.connections, "runs": runs,
          "exposures_counted": counted}, table, str(args.json) if args.json else None)


if __name__ == "__main__":
    main()
