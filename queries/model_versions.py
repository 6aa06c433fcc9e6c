"""The current version of each model name, kept by the query process and refreshed off the request path.

Why: a name's current version is found by listing its published versions (projections/
recommendations.py `read_model`), and where a Connect sink keeps the registry — the MongoDB-wire
store, in one collection with every user's published list — that listing is a scan FerretDB cannot
push down: 3–6 s on a busy store here, growing with the collection. Under load, every request that
found the cached answer expired started its own scan, and recommendations stopped answering at all.

Versions change only when a trainer publishes, so a request takes the cached answer; once it is older
than the TTL, one background refresh per name runs while requests keep the previous answer. Only the
first request for a name waits (and concurrent first requests share that one read). A refresh that
fails keeps the previous answer and is tried again by the next request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from projections import recommendations as recommendations_view
from projections.changes import ViewStore

log = logging.getLogger(__name__)

#: How old a cached answer may get before a request starts a refresh (a new version is served at
#: most this long plus one refresh after it is published).
VERSION_TTL_SECONDS = 1.0


class ModelVersions:
    def __init__(self, store: ViewStore, ttl: float = VERSION_TTL_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._known: dict[str, tuple[float, dict[str, Any] | None]] = {}  # name -> (expires, doc)
        self._refreshing: dict[str, asyncio.Task[dict[str, Any] | None]] = {}

    async def current(self, name: str) -> dict[str, Any] | None:
        """The registry document of `name`'s current version (or of `name@version` exactly), None
        when nothing is published under it."""
        known = self._known.get(name)
        if known is None:
            return await asyncio.shield(self._refresh(name))
        expires, doc = known
        if expires <= time.monotonic():
            self._refresh(name)
        return doc

    async def version(self, name: str) -> str | None:
        doc = await self.current(name)
        return doc["model_version"] if doc else None

    def forget(self) -> None:
        """Drop every cached answer: the next request for each name reads the registry again."""
        self._known.clear()

    def _refresh(self, name: str) -> asyncio.Task[dict[str, Any] | None]:
        task = self._refreshing.get(name)
        if task is None:
            task = asyncio.ensure_future(self._read(name))
            self._refreshing[name] = task
            task.add_done_callback(functools.partial(self._done, name))
        return task

    async def _read(self, name: str) -> dict[str, Any] | None:
        doc = await recommendations_view.read_model(self.store, name)
        self._known[name] = (time.monotonic() + self.ttl, doc)
        return doc

    def _done(self, name: str, task: asyncio.Task[dict[str, Any] | None]) -> None:
        self._refreshing.pop(name, None)
        if not task.cancelled() and task.exception() is not None and name in self._known:
            log.warning("refreshing model %r's current version failed; serving the previous answer: %r", name, task.exception())
