"""`movieaugur demo` from the installed console script: serves within a minute, takes events, and
recommends unseen items with metadata to a sample user."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

DEMO_DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict[str, str], object]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def post(url: str, body: object) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@pytest.fixture
def demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    executable = str(Path(sys.executable).with_name("movieaugur"))  # this venv's, not whatever is on PATH
    port = free_port()
    log_file = (tmp_path / "demo.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        [executable, "demo", "--port", str(port), "--data-dir", str(tmp_path / "state")],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"demo exited with {process.returncode}: {(tmp_path / 'demo.log').read_text()}")
            try:
                if get(f"{base}/readyz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() - started > DEMO_DEADLINE:
                pytest.fail(f"demo not serving within {DEMO_DEADLINE}s: {(tmp_path / 'demo.log').read_text()}")
            time.sleep(0.2)
        yield base, time.monotonic() - started, tmp_path / "demo.log"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(0.1)


def test_demo_serves_events_popularity_and_recommendations(demo) -> None:  # type: ignore[no-untyped-def]
    base, startup, _ = demo
    assert startup < DEMO_DEADLINE
    status, _, items = get(f"{base}/popularity/movie")
    assert status == 200 and items and items[0]["title"]

    now = int(time.time())
    fresh = [{"user_id": f"newcomer-{i}", "item_id": "brand-new-film", "object_type": "movie", "timestamp": now} for i in range(3)]
    assert post(f"{base}/events", fresh) == 200

    def shows_up() -> bool:
        _, _, listed = get(f"{base}/popularity/movie?limit=1000")
        return any(item["id"] == "brand-new-film" for item in listed)

    wait_for(shows_up)

    _, _, history = get(f"{base}/v1/users/user-5/history?limit=1000")
    seen = {item["id"] for item in history["items"]}
    assert seen, "sample user has a history"
    status, headers, recommended = get(f"{base}/recommendations/default/users/user-5")
    assert status == 200
    assert "X-Recommendation-Fallback" not in headers
    assert headers["X-Model-Version"]
    assert recommended and not seen & {item["id"] for item in recommended}
    assert all(item["title"] and item["categories"] for item in recommended)
    assert {"id", "object_type", "title", "description", "release_date", "categories", "keywords", "creators"} <= set(recommended[0])
