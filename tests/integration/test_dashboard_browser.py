"""The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
`scripts/setup.sh test`) against `movieaugur demo` on a real port with the sample data and a model.

For /dashboard and /dashboard/users/user-1: the screenshot run exits 0 and writes a PNG of real
content (kept under tests/artifacts/), the rendered DOM holds the titles the API gives for the
user's history and recommendations, and the page logs no console error. Console errors are read
through the DevTools protocol (Runtime.exceptionThrown, console.error/assert, and Log entries of
level error, which include failed loads and Content-Security-Policy violations); a page with a
deliberate error proves the check detects one. Chromium's stderr is also searched for "Uncaught".
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.integration.test_demo import demo, get  # noqa: F401 - `demo` is a fixture

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
]
MIN_PNG_BYTES = 20_000
USER = "user-1"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: `bash scripts/setup.sh test` installs it (as root), or apt-get install chromium")
    return found


def run_chromium(profile: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def uncaught(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line]


# -- a tiny DevTools protocol client -----------------------------------------------------------


class DevTools:
    """Commands and events over the browser's DevTools websocket (aiohttp's websocket client)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            waiting = self.pending.pop(data["id"], None) if "id" in data else None
            if waiting is not None and not waiting.done():
                waiting.set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.ids += 1
        message: dict[str, Any] = {"id": self.ids, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        answer = asyncio.get_running_loop().create_future()
        self.pending[self.ids] = answer
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(answer, 30)
        assert "error" not in reply, f"{method}: {reply['error']}"
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def wait_for(self, method: str, session: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {method} within {timeout}s")


def errors_in(events: list[dict[str, Any]], session: str) -> list[str]:
    """What a page reported as an error: uncaught exceptions, console.error/assert, and browser log
    entries of level error (failed loads, blocked by the Content-Security-Policy, ...)."""
    found = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
        elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log ({params['entry'].get('source')}): {params['entry']['text']}")
    return found


async def console_errors(url: str, profile: Path, settle: float = 0.5) -> list[str]:
    """Load `url` in headless Chromium driven over the DevTools protocol; the errors it reported."""
    log_file = (profile.parent / f"{profile.name}.log").open("w")
    process = await asyncio.create_subprocess_exec(
        chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.is_file() and len(active.read_text().splitlines()) >= 2):
            assert process.returncode is None, f"chromium exited with {process.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws:
            tools = DevTools(ws)
            target = (await tools.call("Target.createTarget", url="about:blank"))["targetId"]
            session = (await tools.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                await tools.call(f"{domain}.enable", session)
            await tools.call("Page.navigate", session, url=url)
            await tools.wait_for("Page.loadEventFired", session)
            await asyncio.sleep(settle)  # late messages (timers, deferred loads)
            found = errors_in(tools.events, session)
            with contextlib.suppress(Exception):
                await tools.call("Browser.close")
            tools.reader.cancel()
        return found
    finally:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        log_file.close()


# -- the test --------------------------------------------------------------------------------------


def test_console_error_check_detects_a_deliberate_error(tmp_path: Path) -> None:
    """The check below would see an error: a page that throws and calls console.error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><title>broken</title><p>broken on purpose</p>"
                    "<script>console.error('deliberate console error'); throw new Error('deliberate failure');</script>")
    errors = asyncio.run(console_errors(page.as_uri(), tmp_path / "profile"))
    assert any("deliberate failure" in error for error in errors), errors
    assert any("deliberate console error" in error for error in errors), errors
    screenshot = run_chromium(tmp_path / "profile2", "--dump-dom", page.as_uri())
    assert uncaught(screenshot.stderr), "chromium's stderr names the uncaught error too"


def test_dashboard_in_headless_chromium(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, _, _ = demo
    _, _, history = get(f"{base}/v1/users/{USER}/history?limit=50")
    _, _, recommended = get(f"{base}/v1/users/{USER}/recommendations?limit=10")
    history_titles = [item["title"] for item in history["items"]]  # type: ignore[index]
    recommended_titles = [item["title"] for item in recommended["items"]]  # type: ignore[index]
    assert history_titles and recommended_titles and not recommended.get("fallback")  # type: ignore[union-attr]
    ARTIFACTS.mkdir(exist_ok=True)

    pages = {"dashboard": f"{base}/dashboard", "dashboard-user": f"{base}/dashboard/users/{quote(USER)}"}
    doms = {}
    for name, url in pages.items():
        started = time.monotonic()
        png = ARTIFACTS / f"{name}.png"
        png.unlink(missing_ok=True)
        shot = run_chromium(tmp_path / f"{name}-shot", f"--screenshot={png}", "--window-size=1280,2000", url)
        assert shot.returncode == 0, shot.stderr[-2000:]
        assert png.is_file() and png.stat().st_size > MIN_PNG_BYTES, f"{png}: {png.stat().st_size if png.exists() else 0} bytes"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not uncaught(shot.stderr), uncaught(shot.stderr)
        dom = run_chromium(tmp_path / f"{name}-dom", "--dump-dom", url)
        assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
        assert not uncaught(dom.stderr), uncaught(dom.stderr)
        doms[name] = dom.stdout
        errors = asyncio.run(console_errors(url, tmp_path / f"{name}-devtools"))
        assert errors == [], f"{url}: console errors {errors}"
        print(f"screenshot of {url}: {png} ({png.stat().st_size} bytes, {time.monotonic() - started:.1f}s)")

    overview = doms["dashboard"]
    for section in ("id=\"popularity\"", "id=\"models\"", "id=\"operations\"", "<svg", "NDCG@100", "passed: beats popularity"):
        assert section in overview, section
    _, _, popular = get(f"{base}/v1/popularity/movie?window=7d&limit=3")
    assert all(item["title"] in overview for item in popular["items"])  # type: ignore[index]

    user_page = html.unescape(doms["dashboard-user"])
    missing_history = [t for t in history_titles if t not in user_page]
    missing_recommended = [t for t in recommended_titles if t not in user_page]
    assert not missing_history and not missing_recommended, (missing_history, missing_recommended)
    assert "popularity fallback" in user_page and "Lists are not shown yet" in user_page
