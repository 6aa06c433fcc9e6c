"""Blocking SQLite calls off the event loop, on a pool the adapter owns.

Owning the pool (rather than asyncio.to_thread's shared one) lets close() wait for calls still in
flight: a cancelled coroutine does not stop its thread, and closing a connection under a running
query crashes the sqlite3 module.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingPool:
    def __init__(self, name: str, workers: int = 4):
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def shutdown(self) -> None:
        """Wait for calls in flight, then refuse new ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)
