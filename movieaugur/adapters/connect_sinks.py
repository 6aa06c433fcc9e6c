"""Kafka Connect's MongoDB sinks: registering them, and replaying the views they keep.

Which sinks exist follows the projections' declarations (`Projection.sink`): each names its
connector template in infra/connect/, rendered with the deployment's topic prefix and MongoDB
address and registered through Connect's REST API with an idempotent PUT.

Replay uses Connect's offset management (KIP-875, Kafka 3.6+): stop the connector, delete its
offsets, empty its collection, resume. The sink then copies the compacted topic again from the
beginning; upserts by `_id` make the copy the same as the one it replaces.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from string import Template
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from projections.base import ConnectSink, Projection

#: The connector templates (data files shipped with the package, beside the compose file).
TEMPLATES = Path(__file__).resolve().parents[2] / "infra" / "connect"


class ConnectError(RuntimeError):
    pass


def sinks_of(projections: Iterable[Projection]) -> list[ConnectSink]:
    return [p.sink for p in projections if p.sink is not None]


def render_connector(sink: ConnectSink, topic_prefix: str, mongo_url: str, database: str) -> dict[str, Any]:
    text = (TEMPLATES / f"{sink.connector}.json").read_text()
    rendered = Template(text).substitute(topic_prefix=topic_prefix, mongo_url=mongo_url, database=database)
    config: dict[str, Any] = json.loads(rendered)
    return config


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    async with session.request(method, url, headers=headers, json=body) as response:
        data = await response.json(content_type=None) if response.content_length != 0 else None
        if response.status >= 400:
            raise ConnectError(f"{method} {url}: {response.status} {data}")
        return data or {}


async def register_sinks(
    connect_url: str, projections: Iterable[Projection], topic_prefix: str, mongo_url: str, database: str
) -> list[str]:
    """Create or update every declared sink; returns the connector names."""
    names = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for sink in sinks_of(projections):
            name = sink.connector_name(topic_prefix)
            config = render_connector(sink, topic_prefix, mongo_url, database)
            await _call(session, "PUT", f"{connect_url}/connectors/{name}/config", config)
            names.append(name)
    return names


async def _wait_state(session: aiohttp.ClientSession, url: str, state: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await _call(session, "GET", f"{url}/status")
        if status.get("connector", {}).get("state") == state:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise ConnectError(f"{url} did not reach {state} within {timeout}s: {status}")
        await asyncio.sleep(0.25)


async def _delete_offsets(session: aiohttp.ClientSession, url: str, timeout: float = 90.0) -> None:
    """Connect refuses while the stopped connector's tasks are still shutting down ("zombie sink
    tasks"); it says to try again, so try again until it accepts or the time is up."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ConnectError),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_after_delay(timeout),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await _call(session, "DELETE", url)


async def reset_sink(connect_url: str, connector: str, empty_view: Callable[[], Awaitable[None]]) -> None:
    """Make the sink copy its topic again from the start into an emptied view."""
    url = f"{connect_url}/connectors/{connector}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await _call(session, "PUT", f"{url}/stop")
        await _wait_state(session, url, "STOPPED")
        await _delete_offsets(session, f"{url}/offsets")
        await empty_view()
        await _call(session, "PUT", f"{url}/resume")
        await _wait_state(session, url, "RUNNING")
