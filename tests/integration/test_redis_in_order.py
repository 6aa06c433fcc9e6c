"""The in-order Redis connection the view store applies batches through (redis_in_order.py), against
a real Redis: answers come back to the right callers in the order the calls were made, an error
reply fails only its own call, and a lost connection fails what waited on it and is made anew."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infra.local.testing import ensure_stack
from movieaugur.adapters.redis_in_order import InOrderConnection

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def redis_url() -> str:
    return ensure_stack().redis_url


@contextlib.asynccontextmanager
async def _opened(redis_url: str) -> AsyncIterator[tuple[Any, InOrderConnection, str]]:
    """A plain client, an in-order connection made from it, and a key of this test's own."""
    client = aioredis.from_url(redis_url)
    connection = InOrderConnection(client)
    key = f"test:inorder:{uuid.uuid4().hex[:8]}"
    try:
        yield client, connection, key
    finally:
        await client.delete(key)
        await connection.close()
        await client.aclose()


def test_calls_in_flight_together_apply_and_answer_in_call_order(redis_url: str) -> None:
    async def check() -> None:
        async with _opened(redis_url) as (client, connection, key):
            calls = [asyncio.ensure_future(connection.call("RPUSH", key, str(i))) for i in range(200)]
            assert await asyncio.gather(*calls) == list(range(1, 201))  # each caller got its own answer
            assert [int(v) for v in await client.lrange(key, 0, -1)] == list(range(200))

    asyncio.run(check())


def test_an_error_reply_fails_only_its_own_call(redis_url: str) -> None:
    async def check() -> None:
        async with _opened(redis_url) as (client, connection, key):
            await client.set(key, "not a number")
            before, refused, after = await asyncio.gather(
                connection.call("PING"), connection.call("INCR", key), connection.call("ECHO", "after"),
                return_exceptions=True)
            assert before is True or before == b"PONG"
            assert isinstance(refused, ResponseError)
            assert after == b"after"

    asyncio.run(check())


def test_a_lost_connection_fails_the_calls_waiting_and_the_next_call_connects_anew(redis_url: str) -> None:
    async def check() -> None:
        async with _opened(redis_url) as (client, connection, key):
            own_id = await connection.call("CLIENT", "ID")
            blocked = asyncio.ensure_future(connection.call("BLPOP", key, "0"))
            waiting = asyncio.ensure_future(connection.call("ECHO", "behind the blocked call"))
            for _ in range(1000):  # until Redis shows the connection blocked in BLPOP (10 s at most)
                if any(c["id"] == str(own_id) and c["cmd"] == "blpop" for c in await client.client_list()):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the BLPOP never reached Redis")
            await client.client_kill_filter(_id=own_id)
            for call in (blocked, waiting):
                with pytest.raises(RedisConnectionError):
                    await call
            assert await connection.call("ECHO", "again") == b"again"
            assert await connection.call("CLIENT", "ID") != own_id

    asyncio.run(check())
