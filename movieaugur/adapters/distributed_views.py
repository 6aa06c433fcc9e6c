"""Distributed mode's view store: Redis for what projectors write, MongoDB for what Connect sinks.

Reads are routed by space and projector writes by projection, so the query service and the
projector runner see one ViewStore, as in embedded mode.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from domain.configuration import weights_of
from kernel.settings import Settings
from movieaugur.adapters import sink_rebuilds
from movieaugur.adapters.mongo_records import MongoRecordViews
from movieaugur.adapters.mongo_views import MongoViewStore
from movieaugur.adapters.redis_views import RedisViewStore
from projections.base import Projection
from projections.changes import Batch, ViewRebuilding, ViewStore
from projections.registry import build_projections


class RoutedViewStore(ViewStore):
    """Each projection's store follows its declaration: a Connect sink's views are read from the
    sink's MongoDB collections; projector-written views live in Redis, or in MongoDB documents for
    the projections named in `in_documents` (MOVIEAUGUR_DOCUMENT_PROJECTIONS)."""

    def __init__(
        self,
        projections: Mapping[str, Projection],
        redis: RedisViewStore,
        mongo: MongoRecordViews,
        documents: MongoViewStore,
        in_documents: frozenset[str] = frozenset(),
    ):
        self.redis = redis
        self.mongo = mongo
        self.documents = documents
        self._by_projection: dict[str, ViewStore] = {}
        self._by_space: dict[str, ViewStore] = {}
        self._owner: dict[str, str] = {}  # space -> the projector-kept projection that writes it
        self._sink_owner: dict[str, str] = {}  # space -> the projection whose Connect sink copies it
        for name, projection in projections.items():
            store: ViewStore
            if projection.sink is not None:
                store = mongo
            else:
                store = documents if name in in_documents else redis
            self._by_projection[name] = store
            self._by_space.update(dict.fromkeys(projection.spaces, store))
            if projection.sink is None:
                self._owner.update(dict.fromkeys(projection.spaces, name))
            else:
                self._sink_owner.update(dict.fromkeys(projection.spaces, name))

    async def _reading(self, space: str) -> ViewStore:
        """The store to read `space` from; ViewRebuilding while its projector rebuilds it (after its
        store lost it): a partial view would be wrong data, a 503 tells the client to retry."""
        store = self._by_space.get(space, self.redis)
        owner = self._owner.get(space)
        if owner is not None and not await store.ready(owner):
            raise ViewRebuilding(owner)
        copied_by = self._sink_owner.get(space)
        if copied_by is not None and await sink_rebuilds.rebuilding(self.redis, copied_by) is not None:
            raise ViewRebuilding(copied_by)  # its sink copies the topic again into a vanished collection
        return store

    def _for_projection(self, projection: str) -> ViewStore:
        return self._by_projection.get(projection, self.redis)

    async def mark_ready(self, projection: str, positions: Mapping[str, int]) -> bool:
        return await self._for_projection(projection).mark_ready(projection, positions)

    async def ready(self, projection: str) -> bool:
        return await self._for_projection(projection).ready(projection)

    async def apply(self, projection: str, batch: Batch) -> None:
        await self._for_projection(projection).apply(projection, batch)

    async def positions(self, projection: str) -> dict[str, int]:
        return await self._for_projection(projection).positions(projection)

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        await self._for_projection(projection).drop(projection, spaces)

    def applies_concurrently(self, projection: str) -> bool:
        return self._for_projection(projection).applies_concurrently(projection)

    def applies_in_order(self, projection: str) -> bool:
        return self._for_projection(projection).applies_in_order(projection)

    def shadow(self, projection: str) -> ViewStore | None:
        """A private copy to rebuild into, where the store behind the projection has one."""
        return self._for_projection(projection).shadow(projection)

    async def promote(self, projection: str, spaces: Sequence[str], shadow: ViewStore) -> None:
        await self._for_projection(projection).promote(projection, spaces, shadow)

    async def revision(self, spaces: Sequence[str]) -> Hashable | None:
        """The revisions of the stores the spaces are read from (None if any cannot tell: the
        MongoDB ones, which Connect writes behind our back)."""
        revisions = []
        for store in dict.fromkeys(self._by_space.get(space, self.redis) for space in spaces):
            revision = await store.revision(spaces)
            if revision is None:
                return None
            revisions.append(revision)
        return tuple(revisions)

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        return await (await self._reading(space)).top(space, keys, offset, limit)

    async def score(self, space: str, key: str, member: str) -> float | None:
        return await (await self._reading(space)).score(space, key, member)

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        return await (await self._reading(space)).scores(space, key, members)

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return await (await self._reading(space)).get_docs(space, keys)

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        return await (await self._reading(space)).keys(space, prefix)

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for space in spaces:
            out.update(await self._by_space.get(space, self.redis).dump([space]))
        return out

    async def close(self) -> None:
        await self.redis.close()
        await self.mongo.close()
        await self.documents.close()


def build_distributed_store(settings: Settings) -> RoutedViewStore:
    projections = build_projections(weights_of(settings))
    in_documents = frozenset(settings.document_projections)
    unknown = {name for name in in_documents if name not in projections or projections[name].sink is not None}
    if unknown:
        raise ValueError(f"MOVIEAUGUR_DOCUMENT_PROJECTIONS: {sorted(unknown)} cannot be kept by projectors in MongoDB")
    return RoutedViewStore(
        projections,
        RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}v:"),
        MongoRecordViews(settings.mongo_url, settings.mongo_database, projections.values()),
        MongoViewStore(settings.mongo_url, settings.mongo_database),
        in_documents,
    )
