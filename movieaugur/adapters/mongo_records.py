"""Views that Kafka Connect keeps in MongoDB: the catalog and the published recommendations.

In distributed mode the MongoDB sink connector copies the compacted `items` and `recommendations`
topics into collections, one document per record key (upserted by `_id`, so re-delivery and replay
are idempotent, and FerretDB's lack of transactions does not matter). The documents are our own
self-describing records; reading one decodes it back into its event and asks the same projection
that the embedded mode runs what view document it makes. The projection logic stays written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pymongo import AsyncMongoClient

from domain.codec import EventCodec
from projections.base import Projection
from projections.catalog import SPACE as ITEMS, CatalogProjection
from projections.changes import Batch, DocPut, ViewStore
from projections.recommendations import MODELS_SPACE, SIMILAR_SPACE, SPACE as RECS, RecommendationsProjection

# space -> (collection, record-key prefix, projection that turns a record into the view document)
SINKS: dict[str, tuple[str, str, Projection]] = {
    ITEMS: ("items", "", CatalogProjection()),
    RECS: ("recommendations", "rec:", RecommendationsProjection()),
    SIMILAR_SPACE: ("recommendations", "sim:", RecommendationsProjection()),
    MODELS_SPACE: ("recommendations", "model:", RecommendationsProjection()),
}
SPACES = frozenset(SINKS)


class MongoRecordViews(ViewStore):
    """Read-only views over sink collections (the writer is Kafka Connect)."""

    def __init__(self, url: str, database: str, codec: EventCodec | None = None):
        self.client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=False)
        self.db = self.client[database]
        self.codec = codec or EventCodec()

    def _view_doc(self, record: dict[str, Any], space: str, key: str) -> dict[str, Any] | None:
        projection = SINKS[space][2]
        event = self.codec.decode(orjson.dumps(record))
        for change in projection.effect(event).changes:
            if isinstance(change, DocPut) and change.space == space and change.key == key:
                return change.doc
        return None

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        collection, prefix, _ = SINKS[space]
        if space == MODELS_SPACE:
            return [await self._model(key) for key in keys]
        ids = [prefix + key for key in keys]
        found = {doc["_id"]: doc async for doc in self.db[collection].find({"_id": {"$in": ids}})}
        return [self._view_doc(found[i], space, k) if i in found else None for i, k in zip(ids, keys, strict=True)]

    async def _model(self, key: str) -> dict[str, Any] | None:
        collection = self.db[SINKS[MODELS_SPACE][0]]
        if "@" in key:
            record = await collection.find_one({"_id": f"model:{key}"})
        else:  # the current version: the newest one published under this name
            cursor = collection.find({"_id": {"$regex": f"^model:{re.escape(key)}@"}}).sort("model_version", -1).limit(1)
            records = [doc async for doc in cursor]
            record = records[0] if records else None
        return self._view_doc(record, MODELS_SPACE, key) if record else None

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        collection, record_prefix, _ = SINKS[space]
        pattern = f"^{re.escape(record_prefix + prefix)}"
        ids = [doc["_id"] async for doc in self.db[collection].find({"_id": {"$regex": pattern}}, {"_id": 1})]
        keys = {i[len(record_prefix):] for i in ids}
        if space == MODELS_SPACE:
            keys |= {k.split("@", 1)[0] for k in keys}
        return sorted(keys)

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out = {}
        for space in spaces:
            keys = [k for k in await self.keys(space) if space != MODELS_SPACE or "@" in k]
            docs = await self.get_docs(space, keys)
            out[space] = {"zsets": {}, "docs": dict(zip(keys, docs, strict=True))}
        return out

    async def drop_collections(self, spaces: Sequence[str]) -> None:
        for name in {SINKS[s][0] for s in spaces}:
            await self.db.drop_collection(name)

    # Writes belong to Kafka Connect; sorted sets do not live here.
    async def apply(self, projection: str, batch: Batch) -> None:
        raise NotImplementedError(f"{projection} is kept by Kafka Connect's MongoDB sink, not by a projector")

    async def positions(self, projection: str) -> dict[str, int]:
        return {}

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        await self.drop_collections(spaces)

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        return []

    async def score(self, space: str, key: str, member: str) -> float | None:
        return None

    async def close(self) -> None:
        await self.client.close()
