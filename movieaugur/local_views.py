"""Views a query process keeps in its own memory, fed from the log by its own projector.

Today that is the catalog: every answer is hydrated with item metadata, so each query process runs
the catalog projection into a MemoryViewStore (movieaugur/adapters/memory_views.py) from the log —
the compacted items topic in distributed mode, the SQLite log embedded. The process catches up
before it starts answering (aiohttp cleanup context), then follows the log until it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from domain.ports import EventLog
from movieaugur.adapters.memory_views import MemoryViewStore
from projections.catalog import CatalogProjection
from projections.runner import Projector

log = logging.getLogger(__name__)


class LocalCatalog:
    """The catalog view in memory, and the projector that keeps it current."""

    def __init__(self, event_log: EventLog):
        self.store = MemoryViewStore()
        self.projector = Projector(CatalogProjection(), event_log, self.store, batch_size=5000, idle_wait=0.2)

    async def followed(self, _app: web.Application) -> AsyncIterator[None]:
        """Catch up before serving, follow while serving (an aiohttp cleanup context)."""
        caught = await self.projector.catch_up()
        log.info("local catalog caught up: %d events", caught)
        stop = asyncio.Event()
        task = asyncio.create_task(self.projector.run(stop), name="local-catalog")
        yield
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
