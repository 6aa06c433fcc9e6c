"""Whole answers of read routes that depend on nothing but the views, kept until a view changes.

Why: the popularity routes answer the same bytes to everyone until a projector commits (they read
one or a few sorted sets, hydrate up to 100 items from the catalog and serialise them: 300–600 µs
of Python per request, against 100 µs for the server's own /healthz). Keeping the serialised
answer under the request's path and query, and the views' revision (`QueryService.revision`: the
view store's and the catalog's `ViewStore.revision`), makes every read between two commits a
dictionary lookup — also while ingest runs, when a projector commits a few times a second and
hundreds of reads share each answer.

Correctness: an answer is stored under the revision read *before* it was built. If a view changed
while it was built, the revision has already moved past the one it is stored under, and that
revision never comes back, so the answer is never served. The day is part of the key because the
windowed routes choose their day buckets by today's date. Only 200 answers are kept; a store that
cannot tell its revision cheaply (None) gets no caching at all.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar, cast

from aiohttp import web
from cachetools import LRUCache

from kernel.http import json_response

T = TypeVar("T")
SECONDS_PER_DAY = 86_400
#: Distinct (path, query) answers kept: item types × windows × limits × categories in practice.
ENTRIES = 1024

Build = Callable[[], Awaitable[object]]
Revision = Callable[[Sequence[str]], Awaitable["Hashable | None"]]


class AnswerCache:
    def __init__(self, revision: Revision, entries: int = ENTRIES) -> None:
        self._revision = revision
        self._answers: LRUCache[tuple[str, str, int], tuple[Hashable, bytes]] = LRUCache(entries)

    async def json(self, request: web.Request, spaces: Sequence[str], build: Build) -> web.Response:
        """The JSON answer to `request`, which reads the view `spaces` (and the catalog): kept, or
        built by `build` (the answer's data) and kept."""
        revision = await self._revision(spaces)
        if revision is None:
            return json_response(await build())
        key = (request.path, request.query_string, int(time.time() // SECONDS_PER_DAY))
        kept = self._answers.get(key)
        if kept is not None and kept[0] == revision:
            return web.Response(body=kept[1], content_type="application/json")
        response = json_response(await build())
        self._answers[key] = (revision, cast(bytes, response.body))
        return response


#: Kept recommendation lists: (user, model, filters) combinations.
RANKINGS = 8192


class KeptRankings(Generic[T]):
    """Per-user answers (a recommendation list) under the revision of everything they were built
    from: the views and the catalog (the stores' revisions), the model name's current version and
    the model runtime's state (a version loaded, the content index grown). The same argument as
    AnswerCache: the revision is read before the answer is built, so an answer built from newer
    data than its revision is never served. Callers get a shallow copy they may change."""

    def __init__(self, entries: int = RANKINGS) -> None:
        self._kept: LRUCache[Hashable, tuple[Hashable, T]] = LRUCache(entries)

    async def get(self, key: Hashable, revision: Hashable | None, build: Callable[[], Awaitable[T]]) -> T:
        if revision is None:
            return await build()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == revision:
            return copy.copy(kept[1])
        answer = await build()
        self._kept[key] = (revision, copy.copy(answer))
        return answer
