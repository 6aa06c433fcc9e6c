"""Distributed mode's view store: Redis for what projectors write, MongoDB for what Connect sinks.

Reads are routed by space and projector writes by projection, so the query service and the
projector runner see one ViewStore, as in embedded mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from movieaugur.adapters.mongo_records import SPACES as CONNECT_SPACES, MongoRecordViews
from movieaugur.adapters.mongo_views import MongoViewStore
from movieaugur.adapters.redis_views import RedisViewStore
from movieaugur.config import Settings
from projections.changes import Batch, ViewStore

# Projections whose views Kafka Connect maintains in distributed mode (no projector runs them).
CONNECT_PROJECTIONS = frozenset({"catalog", "recommendations"})


class RoutedViewStore(ViewStore):
    """`in_documents` names the projector-written projections kept in MongoDB instead of Redis
    (MOVIEAUGUR_DOCUMENT_PROJECTIONS); `document_spaces` are their spaces."""

    def __init__(
        self,
        redis: RedisViewStore,
        mongo: MongoRecordViews,
        documents: MongoViewStore,
        in_documents: frozenset[str] = frozenset(),
        document_spaces: frozenset[str] = frozenset(),
    ):
        self.redis = redis
        self.mongo = mongo
        self.documents = documents
        self.in_documents = in_documents
        self.document_spaces = document_spaces

    def _for_space(self, space: str) -> ViewStore:
        if space in CONNECT_SPACES:
            return self.mongo
        return self.documents if space in self.document_spaces else self.redis

    def _for_projection(self, projection: str) -> ViewStore:
        if projection in CONNECT_PROJECTIONS:
            return self.mongo
        return self.documents if projection in self.in_documents else self.redis

    async def apply(self, projection: str, batch: Batch) -> None:
        await self._for_projection(projection).apply(projection, batch)

    async def positions(self, projection: str) -> dict[str, int]:
        return await self._for_projection(projection).positions(projection)

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        await self._for_projection(projection).drop(projection, spaces)

    def shadow(self, projection: str) -> ViewStore | None:
        """A private copy to rebuild into, where the store behind the projection has one."""
        return self.redis.shadow(projection) if self._for_projection(projection) is self.redis else None

    async def promote(self, projection: str, spaces: Sequence[str], shadow: ViewStore) -> None:
        await self.redis.promote(projection, spaces, shadow)  # type: ignore[arg-type]

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        return await self._for_space(space).top(space, keys, offset, limit)

    async def score(self, space: str, key: str, member: str) -> float | None:
        return await self._for_space(space).score(space, key, member)

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        return await self._for_space(space).scores(space, key, members)

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return await self._for_space(space).get_docs(space, keys)

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        return await self._for_space(space).keys(space, prefix)

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for space in spaces:
            out.update(await self._for_space(space).dump([space]))
        return out

    async def close(self) -> None:
        await self.redis.close()
        await self.mongo.close()
        await self.documents.close()


def build_distributed_store(settings: Settings) -> RoutedViewStore:
    from projections.registry import build_projections

    projections = build_projections(settings.weights)
    in_documents = frozenset(settings.document_projections)
    unknown = in_documents - set(projections) | (in_documents & CONNECT_PROJECTIONS)
    if unknown:
        raise ValueError(f"MOVIEAUGUR_DOCUMENT_PROJECTIONS: {sorted(unknown)} cannot be kept by projectors in MongoDB")
    spaces = frozenset(space for name in in_documents for space in projections[name].spaces)
    return RoutedViewStore(
        RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}v:"),
        MongoRecordViews(settings.mongo_url, settings.mongo_database),
        MongoViewStore(settings.mongo_url, settings.mongo_database),
        in_documents,
        spaces,
    )
