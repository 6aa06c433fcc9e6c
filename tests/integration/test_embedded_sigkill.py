"""Crash safety of the embedded server: SIGKILL it under concurrent writers, restart it on the same
data folder, retry whatever was not acknowledged, and every acknowledged event is in the log once.

`movieaugur serve` (embedded mode, all roles in one process) runs as a subprocess. Writer threads
post /v1/events batches with unique event ids; the server is killed with SIGKILL while requests
are in flight, several times. Between a kill and the restart the log (events.sqlite) is read
directly, which shows:

* durability: every batch answered 200 is in the log, whole;
* atomicity: every batch without an answer is in the log whole or not at all;
* idempotent retries: a batch that was committed but whose answer was lost (the kill came between
  the commit and the response) answers the retry with all duplicates, and is not doubled.

At the end, with the server stopped, each event id of every batch is in the log exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.events import STREAMS
from movieaugur.adapters.sqlite_log import SQLiteEventLog

NOW = int(time.time())
BATCH = 200  # events per request
WRITERS = 6
KILLS = 3
ACKS_BEFORE_KILL = 12  # batches acknowledged in a cycle before the kill
READY_DEADLINE = 60.0
WINDOW_WAIT = 3.0  # how long to look for a batch committed but not yet answered before killing anyway


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_body(number: int) -> bytes:
    return json.dumps([
        {"event_id": f"k{number}-{i}", "user_id": f"u{(number * BATCH + i) % 101}", "item_id": f"m{i % 89}",
         "item_type": "movie", "action": ("view", "like", "click")[i % 3], "timestamp": NOW - 3600 + i}
        for i in range(BATCH)
    ]).encode()


def ids_of(number: int) -> set[str]:
    return {f"k{number}-{i}" for i in range(BATCH)}


def post(base: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/v1/events", data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def rows_in_log(data_dir: Path) -> int:
    """How many interactions the log holds, read while the server writes (WAL lets a reader in)."""
    with sqlite3.connect(f"file:{data_dir / 'events.sqlite'}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("SELECT count(*) FROM interactions_events").fetchone()[0]


def log_ids(data_dir: Path) -> dict[str, Counter]:
    """Event ids per stream, read straight from the log file (the server must not be running)."""

    async def scan() -> dict[str, Counter]:
        log = SQLiteEventLog(data_dir / "events.sqlite")
        try:
            out: dict[str, Counter] = {}
            for stream in STREAMS:
                out[stream] = Counter()
                async for logged in log.scan(stream):
                    out[stream][logged.event.event_id] += 1
            return out
        finally:
            await log.close()

    return asyncio.run(scan())


class Server:
    """`movieaugur serve` in embedded mode on a fixed port and data folder, restartable."""

    def __init__(self, data_dir: Path, log_path: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir, self.log_path = data_dir, log_path
        self.process: subprocess.Popen | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEAUGUR_")}
        env.update(MOVIEAUGUR_MODE="embedded", MOVIEAUGUR_DATA_DIR=str(data_dir), MOVIEAUGUR_PORT=str(self.port),
                   MOVIEAUGUR_HOST="127.0.0.1")
        self.env = env

    def start(self) -> None:
        executable = str(Path(sys.executable).with_name("movieaugur"))
        with self.log_path.open("a") as log_file:
            self.process = subprocess.Popen([executable, "serve"], stdout=log_file, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + READY_DEADLINE
        while not ready(self.base):
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready within {READY_DEADLINE}s: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "state", tmp_path / "serve.log")
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)


class Load:
    """Writer threads posting fresh batches until told to stop; what each batch got is recorded."""

    def __init__(self, base: str, numbers: Iterator[int]):
        self.base, self.numbers = base, numbers
        self.lock = threading.Condition()
        self.acked: set[int] = set()
        self.unanswered: set[int] = set()
        self.surprises: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write, daemon=True) for _ in range(WRITERS)]

    def write(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                number = next(self.numbers)
            try:
                status, payload = post(self.base, batch_body(number))
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                with self.lock:
                    self.unanswered.add(number)
                continue
            with self.lock:
                if status == 200 and payload == {"appended": BATCH, "duplicates": 0}:
                    self.acked.add(number)
                    self.lock.notify_all()
                else:
                    self.surprises.append(f"batch {number}: {status} {payload}")
                    self.unanswered.add(number)

    def run_until_acked(self, count: int, timeout: float = 60.0) -> None:
        for thread in self.threads:
            thread.start()
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.acked) >= count or self.surprises, timeout):
                pytest.fail(f"only {len(self.acked)} batches acknowledged within {timeout}s")

    def wait_for_unanswered_commit(self, data_dir: Path, known_batches: int) -> bool:
        """Poll until the log holds a batch whose answer has not reached its writer yet (the moment
        a kill loses an answer but not the events); False if that was not seen in time."""
        deadline = time.monotonic() + WINDOW_WAIT
        while time.monotonic() < deadline:
            rows = rows_in_log(data_dir)
            with self.lock:
                answered = known_batches + len(self.acked)
            if rows > answered * BATCH:
                return True
        return False

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer did not finish"


def test_sigkill_under_load_loses_no_acknowledged_event_and_retries_append_once(server: Server) -> None:
    numbers = itertools.count()
    acked: set[int] = set()
    pending: set[int] = set()
    lost_answers = 0  # batches committed whose answer the kill swallowed
    server.start()
    for cycle in range(KILLS):
        load = Load(server.base, numbers)
        load.run_until_acked(ACKS_BEFORE_KILL)
        load.wait_for_unanswered_commit(server.data_dir, len(acked))
        load.stop.set()  # writers not in a request stop here; those in one are cut by the kill
        server.kill()
        load.join()
        assert not load.surprises, load.surprises
        acked |= load.acked
        pending |= load.unanswered
        assert load.unanswered, f"cycle {cycle}: no request was in flight at the kill"

        in_log = log_ids(server.data_dir)
        interactions = in_log["interactions"]
        doubled = [event_id for event_id, n in interactions.items() if n > 1]
        assert not doubled, f"cycle {cycle}: ids twice in the log: {doubled[:5]}"
        missing = {number: len(ids_of(number) - set(interactions)) for number in acked}
        assert not any(missing.values()), f"cycle {cycle}: acknowledged batches lost events: { {k: v for k, v in missing.items() if v} }"
        committed: set[int] = set()
        for number in pending:
            present = len(ids_of(number) & set(interactions))
            assert present in (0, BATCH), f"cycle {cycle}: batch {number} is half in the log ({present}/{BATCH})"
            if present:
                committed.add(number)
        lost_answers += len(committed)

        # Restart on the same folder and port; retry every unanswered batch with the same ids.
        server.start()
        for number in sorted(pending):
            status, payload = post(server.base, batch_body(number))
            assert status == 200, (number, status, payload)
            expected = {"appended": 0, "duplicates": BATCH} if number in committed else {"appended": BATCH, "duplicates": 0}
            assert payload == expected, (number, payload, "was in the log" if number in committed else "was not in the log")
        acked |= pending
        pending = set()

    # Retrying acknowledged batches appends nothing either.
    for number in sorted(acked)[:5]:
        assert post(server.base, batch_body(number)) == (200, {"appended": 0, "duplicates": BATCH})
    server.stop()

    final = log_ids(server.data_dir)["interactions"]
    expected_ids = set().union(*(ids_of(number) for number in acked))
    doubled = [event_id for event_id, n in final.items() if n > 1]
    assert not doubled, f"ids twice in the log: {doubled[:5]}"
    assert set(final) == expected_ids, (
        f"missing {len(expected_ids - set(final))}, unexpected {len(set(final) - expected_ids)}"
    )
    print(f"\n{len(acked)} batches of {BATCH} events over {KILLS} SIGKILLs; {lost_answers} batch(es) were committed "
          "but their answer was lost, and their retry appended nothing")
