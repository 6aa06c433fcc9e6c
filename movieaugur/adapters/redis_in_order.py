"""Commands sent to Redis one after another on one connection, without waiting for each answer.

Why: a projector hands Redis a batch per partition and goes on reading. Through redis-py's pool
each call takes a connection and waits for its answer before the connection is used again, so a
partition's next batch could only be sent once the one before it was answered, and two calls in
flight on two connections may reach Redis in either order. Redis runs the commands of one
connection in the order they arrive, so here every call is written to the socket at once, in call
order, and one reader takes the answers in that same order (pipelining, as Redis's own clients do
for independent commands). The apply script refuses a batch that does not start where the view
ends, so a batch sent behind one that failed is refused rather than applied over a gap.

A lost connection fails every call still waiting for its answer (each may or may not have run;
the projector reads its positions again, as after any failed apply) and the next call connects
anew.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class InOrderConnection:
    def __init__(self, client: Any):
        """`client`: a redis.asyncio.Redis whose pool's settings the connection is made with."""
        self._client = client
        self._connection: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._sent = asyncio.Event()
        self._connecting = asyncio.Lock()

    async def call(self, *args: Any) -> Any:
        """Send the command now and wait for its answer (ResponseError for an error reply)."""
        connection = self._connection or await self._connect()
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)  # before the write, and with no await between: answers keep the order
        self._sent.set()
        try:
            await connection.send_packed_command(connection.pack_command(*args), check_health=False)
        except BaseException as error:
            self._fail(connection, error)
            raise
        return await answer

    async def _connect(self) -> Any:
        async with self._connecting:
            if self._connection is None:
                connection = self._client.connection_pool.make_connection()
                await connection.connect()
                self._connection = connection
                self._reader = asyncio.create_task(self._read(connection))
            return self._connection

    async def _read(self, connection: Any) -> None:
        try:
            while True:
                while not self._waiting:
                    self._sent.clear()
                    await self._sent.wait()
                try:
                    reply, refused = await connection.read_response(), None
                except ResponseError as error:  # that command's error; the connection is fine
                    reply, refused = None, error
                answer = self._waiting.popleft()
                if answer.done():  # its caller stopped waiting (cancelled); the order stays
                    continue
                if refused is not None:
                    answer.set_exception(refused)
                else:
                    answer.set_result(reply)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._fail(connection, error)

    def _fail(self, connection: Any, error: BaseException) -> None:
        """The connection is unusable: fail what waits on it, and connect anew next time."""
        if self._connection is not connection:
            return
        self._connection = None
        waiting, self._waiting = self._waiting, collections.deque()
        for answer in waiting:
            if not answer.done():
                answer.set_exception(RedisConnectionError(f"the connection to Redis was lost: {error!r}"))
                answer.exception()  # retrieved here: a caller that stopped waiting would leave it unread
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        asyncio.ensure_future(connection.disconnect(nowait=True))

    async def close(self) -> None:
        connection, reader = self._connection, self._reader
        self._connection = self._reader = None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if connection is not None:
            await connection.disconnect()
