"""Hostile bodies: what a too-large write costs the embedded server, in time and memory.

Why: a write body is bounded by MOVIEAUGUR_MAX_BATCH x MOVIEAUGUR_MAX_EVENT_BYTES (about 20 MiB by
default). A server that reads a body whole before checking its size, or inflates a gzip body whole,
can be pushed out of memory by one request, and stalls every other client while it does. This
script starts `movieaugur serve` (embedded, all roles) as a subprocess and sends POST /v1/events:

  1. a 60 MB body with an honest Content-Length (can be refused before a byte of it is read);
  2. the same 60 MB chunked, without Content-Length (must be refused while streaming);
  3. a ~1 MB gzip body that inflates to 1 GiB of zeros (Content-Encoding: gzip; must be refused
     without inflating it all).

For each: the answer's status, the time from the first byte sent to the answer's status line, how
much of the body had been sent by then, the server's peak RSS growth (VmRSS polled every few ms
from /proc, plus VmHWM after resetting it through /proc/<pid>/clear_refs where allowed), and the
latency of GET /healthz polled on other connections during the upload (does one hostile client
stall the others?). `--smoke` runs a small variant in a few seconds (the server started with
MOVIEAUGUR_MAX_BATCH=1000, i.e. a ~1 MiB limit; 6 MB bodies; gzip inflating to 128 MiB), and
`--check` exits non-zero unless every case got 413, /healthz never failed and the server survived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _util  # noqa: F401 - puts the repo on sys.path
from _util import emit, fmt, markdown, say

MB = 1_000_000
MIB = 1 << 20
ELEMENT = b'{"event_id":"hostile-0000000","user_id":"u1","item_id":"m1","item_type":"movie","action":"view"}'


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, env_extra: dict[str, str]):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "serve.log"
        executable = Path(sys.executable).with_name("movieaugur")
        self.executable = str(executable) if executable.exists() else (shutil.which("movieaugur") or "movieaugur")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEAUGUR_")}
        self.env.update(MOVIEAUGUR_MODE="embedded", MOVIEAUGUR_DATA_DIR=str(folder / "state"),
                        MOVIEAUGUR_PORT=str(self.port), MOVIEAUGUR_HOST="127.0.0.1", **env_extra)
        self.process: subprocess.Popen | None = None

    def start(self, deadline_s: float = 60.0) -> None:
        with self.log_path.open("w") as log_file:
            self.process = subprocess.Popen([self.executable, "serve"], stdout=log_file, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + deadline_s
        while not self.healthy("/readyz"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self, path: str = "/healthz") -> bool:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# -- memory and latency probes ---------------------------------------------------------------


def status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def reset_hwm(pid: int) -> bool:
    """Reset the peak-RSS mark (VmHWM) to the current RSS; Linux allows it for one's own processes."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Polls the server's VmRSS until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.005):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop_flag = threading.Event()
        self.peak_kib = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            rss = status_kib(self.pid, "VmRSS")
            if rss is not None:
                self.peak_kib = max(self.peak_kib, rss)
                self.samples += 1
            time.sleep(self.interval)


class HealthProbe(threading.Thread):
    """GET /healthz on a new connection every `interval` until stopped; latencies in ms."""

    def __init__(self, base: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.base, self.interval = base, interval
        self.stop_flag = threading.Event()
        self.latencies: list[float] = []
        self.sent_at: list[float] = []  # when each probe was sent, seconds after `origin`
        self.failures: list[str] = []
        self.origin = time.perf_counter()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            started = time.perf_counter()
            try:
                self.sent_at.append(started - self.origin)
                with urllib.request.urlopen(self.base + "/healthz", timeout=10) as response:
                    response.read()
                    if response.status != 200:
                        self.failures.append(f"status {response.status}")
                self.latencies.append((time.perf_counter() - started) * 1000)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
                self.failures.append(repr(error)[:120])
            self.stop_flag.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        values = self.latencies
        slowest = max(range(len(values)), key=values.__getitem__) if values else None
        return {
            "n": len(values),
            "median_ms": statistics.median(values) if values else float("nan"),
            "max_ms": max(values) if values else float("nan"),
            "slowest_sent_at_s": None if slowest is None else self.sent_at[slowest],
            "failures": len(self.failures),
            "first_failures": self.failures[:3],
        }


# -- bodies ----------------------------------------------------------------------------------


def json_chunks(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """A JSON array of `total` bytes (about): the same element repeated, in chunks."""
    block = (b"," + ELEMENT) * max(1, chunk // (len(ELEMENT) + 1))
    yield b"[" + ELEMENT
    sent = 1 + len(ELEMENT)
    while sent + len(block) + 1 <= total:
        yield block
        sent += len(block)
    yield b"]"


def chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for piece in chunks:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def split(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def gzip_zeros(inflated: int) -> bytes:
    """gzip of `inflated` zero bytes, compressed streaming (the inflated data is never held)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MIB)
    parts = [packer.compress(block) for _ in range(inflated // MIB)]
    return b"".join(parts) + packer.flush()


# -- one case --------------------------------------------------------------------------------


def head(port: int, *lines: str) -> bytes:
    text = f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    return (text + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def run_case(server: Server, name: str, request_head: bytes, body: Callable[[], Iterator[bytes]], described: dict, timeout: float) -> dict:
    """Send head + body on one connection while reading the answer; probes run meanwhile."""
    time.sleep(0.2)  # let the previous case's memory settle before the baseline
    baseline = status_kib(server.pid, "VmRSS") or 0
    hwm_reset = reset_hwm(server.pid)
    sampler, probe = Sampler(server.pid), HealthProbe(server.base)
    sampler.start()
    probe.start()
    sent = [0]
    upload_done: list[float | None] = [None]
    upload_error: list[str | None] = [None]
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    probe.origin = started

    def send() -> None:
        try:
            sock.sendall(request_head)
            for piece in body():
                sock.sendall(piece)
                sent[0] += len(piece)
            upload_done[0] = time.perf_counter() - started
        except OSError as error:  # the server answered and closed: expected for a refusal
            upload_error[0] = type(error).__name__

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sock.settimeout(timeout)
    answer = b""
    status: int | str = "no answer"
    answered_at = float("nan")
    sent_at_answer = 0
    try:
        while b"\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        if b"\r\n" in answer:
            answered_at = time.perf_counter() - started
            sent_at_answer = sent[0]
            status = int(answer.split(b"\r\n", 1)[0].split()[1])
            while b"\r\n\r\n" not in answer:
                piece = sock.recv(65536)
                if not piece:
                    break
                answer += piece
            try:  # the error body, briefly, for the report
                answer += sock.recv(4096)
            except OSError:
                pass
    except TimeoutError:
        status = f"no answer in {timeout:.0f}s"
    except OSError as error:
        status = f"connection error ({type(error).__name__})"
    finally:
        # Keep probing a little after the answer: memory may still be growing.
        time.sleep(0.3)
        sock.close()
        sender.join(timeout=60)
        sampler.stop_flag.set()
        probe.stop_flag.set()
        sampler.join()
        probe.join()
    hwm = status_kib(server.pid, "VmHWM") if hwm_reset else None
    alive = server.alive() and server.healthy()
    message = answer.split(b"\r\n\r\n", 1)[1][:200].decode("utf-8", "replace") if b"\r\n\r\n" in answer else ""
    return {
        "case": name,
        **described,
        "status": status,
        "time_to_answer_s": answered_at,
        "body_bytes_sent_before_answer": sent_at_answer,
        "body_bytes_sent_total": sent[0],
        "upload_finished_s": upload_done[0],
        "upload_cut": upload_error[0],
        "rss_baseline_mib": baseline / 1024,
        "peak_rss_growth_mib": max(0, sampler.peak_kib - baseline) / 1024,
        "rss_samples": sampler.samples,
        "hwm_growth_mib": None if hwm is None else max(0, hwm - baseline) / 1024,
        "healthz": probe.summary(),
        "server_alive_after": alive,
        "answer": message,
    }


def run(args: argparse.Namespace) -> dict:
    smoke = args.smoke
    body_bytes = args.body_mb * MB if args.body_mb else (6 * MB if smoke else 60 * MB)
    inflated = args.inflate_mib * MIB if args.inflate_mib else (128 * MIB if smoke else 1024 * MIB)
    env_extra = {"MOVIEAUGUR_MAX_BATCH": "1000"} if smoke else {}
    from kernel.settings import Settings

    limits = Settings(**({"max_batch": 1000} if smoke else {}))
    limit = limits.max_batch * limits.max_event_bytes
    say(f"building the gzip body ({inflated / MIB:,.0f} MiB of zeros) …")
    built = time.perf_counter()
    bomb = gzip_zeros(inflated)
    say(f"  {len(bomb):,} bytes in {time.perf_counter() - built:.1f}s")
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-", dir=args.dir) as tmp:
        server = Server(Path(tmp), env_extra)
        server.start()
        try:
            say(f"server pid {server.pid} on {server.base}; write-body limit {limit:,} bytes")
            plan = [
                (f"{body_bytes / MB:.0f} MB, Content-Length", head(server.port, f"Content-Length: {sum(len(c) for c in json_chunks(body_bytes))}"),
                 lambda: json_chunks(body_bytes), {"wire_bytes": body_bytes, "inflated_bytes": None}),
                (f"{body_bytes / MB:.0f} MB, chunked", head(server.port, "Transfer-Encoding: chunked"),
                 lambda: chunked(json_chunks(body_bytes)), {"wire_bytes": body_bytes, "inflated_bytes": None}),
                (f"{len(bomb) / MB:.1f} MB gzip -> {inflated / MIB:,.0f} MiB", head(server.port, f"Content-Length: {len(bomb)}", "Content-Encoding: gzip"),
                 lambda: split(bomb), {"wire_bytes": len(bomb), "inflated_bytes": inflated}),
            ]
            for name, request_head, body, described in plan:
                if not server.alive():
                    cases.append({"case": name, **described, "status": "server dead before the case"})
                    continue
                say(f"case: {name} …")
                result = run_case(server, name, request_head, body, described, args.timeout)
                say(f"  status {result['status']} after {result['time_to_answer_s']:.3f}s; "
                    f"peak RSS +{result['peak_rss_growth_mib']:.1f} MiB; /healthz max {result['healthz']['max_ms']:.1f} ms")
                cases.append(result)
        finally:
            server.stop()
    return {"smoke": smoke, "limit_bytes": limit, "max_body_bytes_setting": limits.max_body_bytes, "server_env": env_extra, "cases": cases}


def table(out: dict) -> str:
    headers = ["case", "status", "time to answer (s)", "body sent before answer", "peak RSS growth (MiB)", "VmHWM growth (MiB)",
               "/healthz median / max (ms)", "/healthz n (failed)", "alive after"]
    rows = []
    for case in out["cases"]:
        health = case.get("healthz", {})
        hwm = case.get("hwm_growth_mib")
        rows.append([
            case["case"], case["status"], fmt(case.get("time_to_answer_s", float("nan")), 3),
            f"{case.get('body_bytes_sent_before_answer', 0) / MB:,.1f} MB",
            fmt(case.get("peak_rss_growth_mib", float("nan")), 1), "–" if hwm is None else fmt(hwm, 1),
            f"{fmt(health.get('median_ms', float('nan')), 1)} / {fmt(health.get('max_ms', float('nan')), 1)}",
            f"{health.get('n', 0)} ({health.get('failures', 0)})", case.get("server_alive_after", False),
        ])
    return markdown(headers, rows) + (
        f"\n\nPOST /v1/events to `movieaugur serve` (embedded); write-body limit {out['limit_bytes']:,} bytes"
        f"{' (smoke: MOVIEAUGUR_MAX_BATCH=1000)' if out['smoke'] else ''}. Time to answer counts from the first byte sent; "
        "RSS growth is over the server's RSS just before the case (VmRSS polled every 5 ms; VmHWM after a clear_refs reset)."
    )


def failed(out: dict) -> list[str]:
    problems = []
    for case in out["cases"]:
        if case.get("status") != 413:
            problems.append(f"{case['case']}: status {case.get('status')}, not 413")
        if case.get("healthz", {}).get("failures"):
            problems.append(f"{case['case']}: /healthz failed {case['healthz']['failures']} time(s)")
        if not case.get("server_alive_after"):
            problems.append(f"{case['case']}: server not healthy afterwards")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small and quick (a ~1 MiB limit, 6 MB bodies, gzip to 128 MiB)")
    parser.add_argument("--body-mb", type=int, help="size of the plain bodies in MB (default 60; smoke 6)")
    parser.add_argument("--inflate-mib", type=int, help="what the gzip body inflates to, MiB (default 1024; smoke 128)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every case got 413 and the server stayed healthy")
    parser.add_argument("--dir", help="where the temporary data folder goes")
    parser.add_argument("--json-out", help="also write the JSON summary here")
    args = parser.parse_args()
    out = run(args)
    emit(out, table(out), args.json_out)
    if args.check and (problems := failed(out)):
        say("FAILED: " + "; ".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
