"""Views a query process keeps in its own memory, fed from the log by its own projector.

Today that is the catalog: every answer is hydrated with item metadata, so each query process runs
the catalog projection into a MemoryViewStore (movieaugur/adapters/memory_views.py) from the log —
the compacted items topic in distributed mode, the SQLite log embedded. The process catches up
before it starts answering (aiohttp cleanup context), then follows the log until it stops.

The store also tells listeners which catalog documents each applied batch put: the model runtime's
content index (offline/serving.py) follows the catalog that way, so an item is "like" others the
moment its `ItemCatalogued` event reaches this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from domain.ports import EventLog
from movieaugur.adapters.memory_views import MemoryViewStore
from projections.catalog import SPACE as ITEMS
from projections.catalog import CatalogProjection
from projections.changes import Batch, DocPut
from projections.runner import CatchUpStalled, Projector

log = logging.getLogger(__name__)


CatalogListener = Callable[[Mapping[str, Mapping[str, Any]]], None]


class CatalogStore(MemoryViewStore):
    """A MemoryViewStore that hands each applied batch's catalog documents to its listeners."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[CatalogListener] = []

    async def apply(self, projection: str, batch: Batch) -> None:
        await super().apply(projection, batch)
        if not self.listeners:
            return
        docs = self.docs.get(ITEMS, {})
        changed = {
            change.key: docs[change.key]
            for effect in batch.effects
            for change in effect.changes
            if isinstance(change, DocPut) and change.space == ITEMS and change.key in docs
        }
        if changed:
            for listener in self.listeners:
                listener(changed)


class LocalCatalog:
    """The catalog view in memory, and the projector that keeps it current."""

    def __init__(self, event_log: EventLog):
        self.store = CatalogStore()
        self.projector = Projector(CatalogProjection(), event_log, self.store, batch_size=5000, idle_wait=0.2)
        # run once caught up, before serving (the model runtime builds its content index there)
        self.when_caught_up: list[Callable[[], Awaitable[None]]] = []

    async def followed(self, _app: web.Application) -> AsyncIterator[None]:
        """Catch up before serving, follow while serving (an aiohttp cleanup context)."""
        try:
            caught = await self.projector.catch_up()
            log.info("local catalog caught up: %d events", caught)
        except CatchUpStalled as stalled:  # serve what is known; following fills in the rest
            log.warning("local catalog not caught up before serving: %s", stalled)
        for hook in self.when_caught_up:
            await hook()
        stop = asyncio.Event()
        task = asyncio.create_task(self.projector.run(stop), name="local-catalog")
        yield
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
