"""Whole answers of read routes that depend on nothing but the views, kept until a view changes.

Why: the popularity routes answer the same bytes to everyone until a projector commits (they read
one or a few sorted sets, hydrate up to 100 items from the catalog and serialise them: 300–600 µs
of Python per request, against 100 µs for the server's own /healthz). Keeping the serialised
answer under the route's validated parameters and the views' revision (`QueryService.revision`:
the view store's and the catalog's `ViewStore.revision`), makes every read between two commits a
dictionary lookup — also while ingest runs, when a projector commits a few times a second and
hundreds of reads share each answer.

Recommendation lists are kept the same way (`KeptAnswers`, used by queries/service.py), under the
revision plus the model version and the model runtime's state. Where the published lists sit in a
store that cannot tell its revision (the document store, distributed), a list made by fold-in is
kept under the revision of the views it did read, and one taken from a published list is not kept.

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
#: Bytes of serialised answers kept per query process (an answer is at most a few hundred KB).
ANSWER_BYTES = 64 * 2**20
#: Items of kept recommendation lists per query process (each a hydrated item, about 1 KB).
KEPT_ITEMS = 100_000

Build = Callable[[], Awaitable[object]]
Revision = Callable[[Sequence[str]], Awaitable["Hashable | None"]]


class KeptAnswers(Generic[T]):
    """Answers under the revision of everything they were built from. The revision is read before
    an answer is built, so an answer built from newer data than its revision is never served.
    Bounded by `size` in total (bytes, items), not by entries: keys come from clients. Callers get
    a shallow copy: they may set its fields, not change the lists and documents in it, which the
    kept one shares."""

    def __init__(self, size: Callable[[T], int], max_size: int) -> None:
        self._kept: LRUCache[Hashable, tuple[Hashable, T]] = LRUCache(
            max_size, getsizeof=lambda kept: size(kept[1]) + 1)

    async def get(
        self, key: Hashable, revision: Hashable | None, build: Callable[[], Awaitable[T]],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """`keep`: whether a built answer may be kept (it read nothing the revision does not cover)."""
        if revision is None:
            return await build()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == revision:
            return copy.copy(kept[1])
        answer = await build()
        if keep is not None and not keep(answer):
            return answer
        entry = (revision, copy.copy(answer))
        if self._kept.getsizeof(entry) <= self._kept.maxsize:
            self._kept[key] = entry
        return answer


class AnswerCache:
    """Serialised view-only answers by the route's *validated* parameters, so that two spellings
    of one query share an answer and two queries never do (the raw query string is decoded only in
    part: `%26` and `%2526` came out alike); parameters a route ignores do not make entries."""

    def __init__(self, revision: Revision, max_bytes: int = ANSWER_BYTES) -> None:
        self._revision = revision
        self._kept: KeptAnswers[bytes] = KeptAnswers(size=len, max_size=max_bytes)

    async def json(self, key: Hashable, spaces: Sequence[str], build: Build) -> web.Response:
        """The JSON answer for `key` (the route and its validated parameters), which reads the view
        `spaces` (and the catalog): kept, or built by `build` (the answer's data) and kept."""

        async def serialised() -> bytes:
            return cast(bytes, json_response(await build()).body)

        dated = (key, int(time.time() // SECONDS_PER_DAY))
        body = await self._kept.get(dated, await self._revision(spaces), serialised)
        return web.Response(body=body, content_type="application/json")
