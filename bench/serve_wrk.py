"""Serving speed under a real load generator: wrk against a running MovieAugur, route by route,
with the same process's /healthz measured in the same run as the yardstick.

Why /healthz: it is the HTTP floor of that very server (aiohttp, our middlewares, no view store),
so route / healthz says how much of the server's capacity a route's own work costs, independent
of how fast this machine is. wrk runs as a separate process (Debian's `wrk`; `bash
scripts/setup.sh bench` installs it), 8 connections by default, and reports latency percentiles.

Embedded (default): starts `movieaugur demo` (sample data, trained) in a subprocess on a free port.
`--url` points it at an already running server instead (e.g. the distributed query service, or
NGINX). Users for the recommendation routes are drawn at random from the sample's users by a wrk
Lua script, so no single cache line answers every request.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
from _util import REPO, emit, markdown, say

ROUTES = {
    "healthz": "/healthz",
    "v1_recommendations": "/v1/users/{user}/recommendations?limit=20",
    "legacy_recommendations": "/recommendations/default/users/{user}",
    "legacy_popularity": "/popularity/movie",
    "v1_popularity": "/v1/popularity/movie?window=7d&limit=20",
}

LUA = """
local users = {%s}
request = function()
  local user = users[math.random(#users)]
  return wrk.format("GET", (string.gsub("%s", "{user}", user)))
end
"""

_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen | None, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready within {timeout}s")


def users_of(url: str) -> list[str]:
    """The demo sample's users (user-1 … user-600); most have published recommendations."""
    return [f"user-{n}" for n in range(1, 601)]


def run_wrk(url: str, path: str, users: list[str], seconds: int, connections: int, threads: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (",".join(f'"{u}"' for u in users), path))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and non-2xx count from `wrk --latency` output."""
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {f"p{m.group(1)}_ms": float(m.group(2)) * scale[m.group(3)] for m in _LATENCY.finditer(out)}
    errors = _ERRORS.search(out)
    rate = _RATE.search(out)
    return {"rps": float(rate.group(1)) if rate else 0.0, **latency, "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running server (default: start `movieaugur demo`)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated subset of: " + ", ".join(ROUTES))
    parser.add_argument("--smoke", action="store_true", help="1 s per route: checks the script works (CI)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `bash scripts/setup.sh bench` (Debian package wrk)")
    seconds = 1 if args.smoke else args.seconds
    process = None
    url = args.url
    folder = tempfile.mkdtemp(prefix="movieaugur-bench-")
    if url is None:
        port = free_port()
        executable = str(Path(sys.executable).with_name("movieaugur"))
        log = open(Path(folder) / "server.log", "w")
        process = subprocess.Popen(
            [executable, "demo", "--port", str(port), "--data-dir", str(Path(folder) / "state")],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )
        url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        users = users_of(url)
        results = {}
        load_before = os.getloadavg()
        for name in args.routes.split(","):
            say(f"wrk {name} ({seconds}s, {args.connections} connections)")
            results[name] = run_wrk(url, ROUTES[name], users, seconds, args.connections, args.threads)
        floor = results.get("healthz", {}).get("rps") or 0.0
        rows = []
        for name, r in results.items():
            share = r["rps"] / floor if floor else float("nan")
            rows.append([name, f"{r['rps']:,.0f}", f"{r.get('p50_ms', 0):.2f}", f"{r.get('p99_ms', 0):.2f}",
                         f"{share:.2f}×", str(r["non_2xx"])])
        summary = {"url": url, "seconds": seconds, "connections": args.connections, "results": results,
                   "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
        table = markdown(["route", "req/s", "p50 ms", "p99 ms", "vs /healthz", "non-2xx"], rows)
        emit(summary, table, str(args.json) if args.json else None)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
