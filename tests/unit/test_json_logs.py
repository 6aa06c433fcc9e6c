"""MOVIEAUGUR_LOG_JSON=true: the CLI's logging setup makes every log line one JSON object, and a
line logged while a request is answered carries the request id the response's X-Request-Id names."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from movieaugur.app import create_app
from movieaugur.cli import _logging
from tests.conftest import serve

log = logging.getLogger("movieaugur.test_json_logs")


@contextlib.contextmanager
def cli_logging() -> Iterator[None]:
    """Logging configured as `movieaugur serve` does it, on a root logger without pytest's handlers
    (basicConfig adds nothing where handlers exist); everything put back afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("movieaugur")
    saved, root_level, our_level = root.handlers[:], root.level, ours.level
    root.handlers.clear()
    try:
        _logging(verbose=False)
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved
        root.setLevel(root_level)
        ours.setLevel(our_level)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(isinstance(record, dict) for record in records)
    return records


async def test_a_failing_request_logs_json_lines_with_its_request_id(container, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MOVIEAUGUR_LOG_JSON", "true")
    app = create_app(container)

    async def boom(request: web.Request) -> web.Response:
        log.warning("about to fail on %s", request.path)
        try:
            raise ValueError("deliberate failure")
        except ValueError:
            log.exception("the handler failed")
            raise

    app.router.add_get("/boom", boom)
    with cli_logging():
        log.warning("outside any request")
        async with serve(app) as client:
            failed = await client.get("/boom")
            answer = await failed.json()
            given = await client.get("/boom", headers={"X-Request-Id": "client-chosen-7"})
            ok = await client.get("/healthz")
        printed = capsys.readouterr().err

    assert failed.status == 500 and given.status == 500 and ok.status == 200
    request_id = failed.headers["X-Request-Id"]
    assert request_id in answer["error"]
    records = json_lines(printed)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records

    outside = [r for r in records if r["message"] == "outside any request"]
    assert len(outside) == 1 and "request_id" not in outside[0]

    mine = [r for r in records if r.get("request_id") == request_id]
    assert [(r["level"], r["logger"]) for r in mine] == [
        ("WARNING", "movieaugur.test_json_logs"),
        ("ERROR", "movieaugur.test_json_logs"),
        ("ERROR", "movieaugur.http"),
    ]
    assert mine[0]["message"] == "about to fail on /boom"
    assert isinstance(mine[1]["exception"], str) and "ValueError: deliberate failure" in mine[1]["exception"]
    assert "unhandled error in GET /boom" in mine[2]["message"] and request_id in mine[2]["message"]
    assert sum(r.get("request_id") == "client-chosen-7" for r in records) == 3
    assert len({json.dumps(r, sort_keys=True) for r in records}) == len(records)  # nothing printed twice
    assert not [r for r in records if r.get("request_id") not in (None, request_id, "client-chosen-7")]  # /healthz logs nothing


async def test_text_logs_stay_the_default(container, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MOVIEAUGUR_LOG_JSON", raising=False)
    with cli_logging():
        log.warning("plain text")
        printed = capsys.readouterr().err
    assert "WARNING movieaugur.test_json_logs: plain text" in printed and not printed.lstrip().startswith("{")
