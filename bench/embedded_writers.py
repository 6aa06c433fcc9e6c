"""Embedded mode under concurrent writers: events/s accepted, read latency meanwhile, projection lag.

Why: issue 9 asks that the one-process embedded system take 32 concurrent writers at ≥ 30k
events/s while reads keep a p99 ≤ 50 ms (writes never starve reads) and the views stay < 2 s
behind. Everything here is a real load generator against a real server: `movieaugur demo` (sample
data, trained, every role in one process) in a child process; one `wrk` posting `--batch`-event
batches to `POST /v1/events` on `--writers` connections, each body built by wrk's Lua with event ids
unique per run, thread and request (so every event is new, none is skipped as a duplicate); a second
`wrk` reading `GET /v1/popularity/movie` on `--readers` connections at the same time. The same
read alone, before the writers start, is the yardstick. After the writers stop, the Prometheus
gauge `movieaugur_projection_lag_events` (summed over projections and partitions) is polled until
it is 0: the lag at the end and the time to catch up are reported.

`--split` serves the same embedded state from two processes once the demo has loaded and trained:
`movieaugur serve --role commands --role queries` and `movieaugur serve --role projectors`
(docs/operations.md, "Scaling").

Needs wrk (`bash scripts/setup.sh bench`).
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
import urllib.request
import uuid
from pathlib import Path

import _util  # noqa: F401 - puts the repo on sys.path
from _util import REPO, emit, markdown, say
from serve_wrk import free_port, parse_wrk, wait_ready

READ_PATH = "/v1/popularity/movie?window=7d&limit=20"

WRITE_LUA = """
local counter = 0
local tag = "%(run)s"
local batch = %(batch)d
local thread_id = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", tostring(threads))
end
function init(args)
  thread_id = id
end
request = function()
  counter = counter + 1
  local parts = {}
  for j = 1, batch do
    local k = counter * batch + j
    parts[j] = '{"event_id":"' .. tag .. '-' .. thread_id .. '-' .. counter .. '-' .. j ..
      '","user_id":"w' .. (k %% 5000) .. '","item_type":"movie","item_id":"' .. ((k * 7919) %% 9000 + 1) ..
      '","action":"view"}'
  end
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"},
                    "[" .. table.concat(parts, ",") .. "]")
end
"""

_LAG = re.compile(r"^movieaugur_projection_lag_events\{[^}]*\}\s+([\d.e+]+)$", re.M)


def wrk(url: str, connections: int, seconds: int, script: str | None = None, path: str = "") -> subprocess.Popen:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    if script:
        command += ["-s", script]
    return subprocess.Popen([*command, url + path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lag(url: str) -> int:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in _LAG.findall(text)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=32, help="concurrent writer connections")
    parser.add_argument("--batch", type=int, default=500, help="events per POST")
    parser.add_argument("--readers", type=int, default=4, help="concurrent reader connections")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--split", action="store_true",
                        help="after the demo has loaded and trained, serve the same embedded state with the "
                             "projectors in a process of their own (`movieaugur serve --role commands --role "
                             "queries` beside `movieaugur serve --role projectors`)")
    parser.add_argument("--smoke", action="store_true", help="2 s, 4 writers of 50 events: checks the script works")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `bash scripts/setup.sh bench` (Debian package wrk)")
    if args.smoke:
        args.writers, args.batch, args.seconds = 4, 50, 2
    folder = Path(tempfile.mkdtemp(prefix="movieaugur-writers-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "server.log", "w")
    executable = str(Path(sys.executable).with_name("movieaugur"))
    process = subprocess.Popen(
        [executable, "demo", "--port", str(port), "--data-dir", str(folder / "state")],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )
    processes = [process]
    try:
        wait_ready(url, process)
        if args.split:
            process.terminate()
            process.wait(timeout=60)
            env = {**os.environ, "MOVIEAUGUR_MODE": "embedded", "MOVIEAUGUR_DATA_DIR": str(folder / "state")}
            process = subprocess.Popen([executable, "serve", "--role", "commands", "--role", "queries", "--port", str(port)],
                                       stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            processes = [process, subprocess.Popen([executable, "serve", "--role", "projectors", "--port", str(free_port())],
                                                   stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)]
            wait_ready(url, process)
        say(f"reads alone: {args.readers} connections, {args.seconds}s")
        alone = parse_wrk(wrk(url, args.readers, args.seconds, path=READ_PATH).communicate()[0])
        script = folder / "write.lua"
        script.write_text(WRITE_LUA % {"run": uuid.uuid4().hex[:8], "batch": args.batch})
        say(f"{args.writers} writers × {args.batch}-event batches and {args.readers} readers, {args.seconds}s")
        load_before = os.getloadavg()
        writers = wrk(url, args.writers, args.seconds, script=str(script))
        readers = wrk(url, args.readers, args.seconds, path=READ_PATH)
        write_out, write_err = writers.communicate()
        stopped = time.monotonic()
        behind = lag(url)
        read_out = readers.communicate()[0]
        written = parse_wrk(write_out)
        if written["rps"] == 0:
            raise SystemExit(f"the writers' wrk reported nothing:\n{write_out}\n{write_err}")
        during = parse_wrk(read_out)
        caught_up = None
        while time.monotonic() - stopped < 300:
            if lag(url) == 0:
                caught_up = time.monotonic() - stopped
                break
            time.sleep(0.1)
        load_after = os.getloadavg()
        events_per_s = written["rps"] * args.batch
        summary = {
            "split": args.split, "writers": args.writers, "batch": args.batch, "readers": args.readers, "seconds": args.seconds,
            "write": written, "events_per_s": events_per_s, "reads_alone": alone, "reads_during": during,
            "lag_at_stop_offsets": behind, "catch_up_seconds": caught_up,
            "loadavg_before": load_before, "loadavg_after": load_after,
        }
        rows = [
            ["writes", f"{events_per_s:,.0f} events/s ({written['rps']:,.1f} batches/s)",
             f"{written.get('p50_ms', 0):.1f}", f"{written.get('p99_ms', 0):.1f}", str(written["non_2xx"])],
            ["reads during", f"{during['rps']:,.0f} req/s", f"{during.get('p50_ms', 0):.1f}",
             f"{during.get('p99_ms', 0):.1f}", str(during["non_2xx"])],
            ["reads alone (yardstick)", f"{alone['rps']:,.0f} req/s", f"{alone.get('p50_ms', 0):.1f}",
             f"{alone.get('p99_ms', 0):.1f}", str(alone["non_2xx"])],
        ]
        table = markdown(["load", "throughput", "p50 ms", "p99 ms", "non-2xx"], rows)
        table += (f"\n\nProjection lag when the writers stopped: {behind:,} offsets; back to 0 after "
                  + (f"{caught_up:.1f} s." if caught_up is not None else "more than 300 s."))
        emit(summary, table, str(args.json) if args.json else None)
    finally:
        for running in processes:
            running.terminate()
        for running in processes:
            running.wait(timeout=60)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
