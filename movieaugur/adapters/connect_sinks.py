"""Replaying the views Kafka Connect keeps: reset the sink to the start of its topic.

Uses Connect's offset management (KIP-875, Kafka 3.6+): stop the connector, delete its offsets,
empty its collection, resume. The sink then copies the compacted topic again from the beginning;
upserts by `_id` make the copy the same as the one it replaces.
"""

from __future__ import annotations

import asyncio

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from infra.local.connectors import connector_name
from movieaugur.adapters.mongo_records import MongoRecordViews


class ConnectError(RuntimeError):
    pass


async def _call(session: aiohttp.ClientSession, method: str, url: str) -> dict:
    async with session.request(method, url, headers={"Content-Type": "application/json", "Accept": "application/json"}) as response:
        body = await response.json(content_type=None) if response.content_length != 0 else None
        if response.status >= 400:
            raise ConnectError(f"{method} {url}: {response.status} {body}")
        return body or {}


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


async def reset_sink(connect_url: str, topic_prefix: str, projection: str, views: MongoRecordViews, spaces) -> None:  # type: ignore[no-untyped-def]
    url = f"{connect_url}/connectors/{connector_name(topic_prefix, projection)}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await _call(session, "PUT", f"{url}/stop")
        await _wait_state(session, url, "STOPPED")
        await _delete_offsets(session, f"{url}/offsets")
        await views.drop_collections(spaces)
        await _call(session, "PUT", f"{url}/resume")
        await _wait_state(session, url, "RUNNING")
