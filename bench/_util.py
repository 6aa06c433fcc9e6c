"""Small helpers shared by the benchmark scripts: medians, machine facts, output.

Why a helper at all: every benchmark reports the same way (a JSON summary for machines, a markdown
table for BENCHMARKS.md, both with medians over repeats and the run's machine facts), and the
numbers are only comparable if they are summarised identically.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(REPO))

DEFAULT_MOVIELENS = os.environ.get("MOVIEAUGUR_MOVIELENS", "/work/shared/data/ml-latest-small")


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median plus spread: the median is what we report, min/max show how noisy the box was."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio(ours: float, raw: float) -> float:
    return ours / raw if raw else float("nan")


def machine() -> dict[str, Any]:
    """What the numbers were measured on; load average matters on a shared 2-core box."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def fmt(x: float, digits: int = 0) -> str:
    if x != x:  # nan
        return "–"
    return f"{x:,.{digits}f}"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_START = machine()  # taken when a benchmark imports this module, i.e. before it measures anything


def emit(result: dict[str, Any], table: str, json_out: str | None) -> None:
    """JSON summary first (one document), then the markdown table, on stdout."""
    result.setdefault("machine", dict(_START))
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2, default=float)
    print(text)
    print()
    print(table)
    if json_out:
        Path(json_out).write_text(text)


def say(message: str) -> None:
    """Progress goes to stderr so stdout stays JSON + table."""
    print(message, file=sys.stderr, flush=True)


async def started_server(app: Any) -> Any:
    """An aiohttp TestServer for `app`, started with the options `movieaugur serve` uses."""
    from aiohttp.test_utils import TestServer

    from kernel.http import SERVER_OPTIONS

    server = TestServer(app)
    await server.start_server(**SERVER_OPTIONS)
    return server
