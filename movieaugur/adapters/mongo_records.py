"""Views that Kafka Connect keeps in MongoDB: the catalog and the published recommendations.

In distributed mode the MongoDB sink connector copies the compacted `items` and `recommendations`
topics into collections, one document per record key (upserted by `_id`, so re-delivery and replay
are idempotent, and FerretDB's lack of transactions does not matter). The documents are our own
self-describing records; reading one decodes it back into its event and asks the same projection
that the embedded mode runs what view document it makes. The projection logic stays written once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from eventsourcing.utils import get_topic
from pymongo import AsyncMongoClient

from domain.codec import EventCodec
from projections.base import Projection
from projections.changes import Batch, DocPut, ViewStore


def sunk_spaces(projections: Iterable[Projection]) -> dict[str, tuple[str, str, Projection]]:
    """space -> (collection, record-key prefix, projection that turns a record into the view
    document), for every projection whose view a Connect sink keeps (its `sink` declaration)."""
    out: dict[str, tuple[str, str, Projection]] = {}
    for projection in projections:
        if projection.sink is not None:
            for space, prefix in projection.sink.record_prefixes.items():
                out[space] = (projection.sink.collection, prefix, projection)
    return out


class MongoRecordViews(ViewStore):
    """Read-only views over sink collections (the writer is Kafka Connect)."""

    def __init__(self, url: str, database: str, projections: Iterable[Projection], codec: EventCodec | None = None):
        self.client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=False)
        self.db = self.client[database]
        self.codec = codec or EventCodec()
        self.sinks = sunk_spaces(projections)

    @property
    def spaces(self) -> frozenset[str]:
        return frozenset(self.sinks)

    def _view_doc(self, record: dict[str, Any], space: str, key: str) -> dict[str, Any] | None:
        projection = self.sinks[space][2]
        event = self.codec.decode(orjson.dumps(record))
        for change in projection.effect(event).changes:
            if isinstance(change, DocPut) and change.space == space and change.key == key:
                return change.doc
        return None

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        collection, prefix, _ = self.sinks[space]
        ids = [prefix + key for key in keys]
        # One point read per id, concurrently: FerretDB serves `{_id: x}` from the index (about
        # 0.7 ms on PostgreSQL at any size) but filters `$in` itself over the whole collection
        # (seconds at 60k documents). MongoDB serves both from the index; point reads cost it
        # little more, and our reads ask for one to a few hundred ids.
        records = await asyncio.gather(*(self.db[collection].find_one({"_id": i}) for i in ids))
        return [self._view_doc(r, space, k) if r else None for r, k in zip(records, keys, strict=True)]

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        collection, record_prefix, projection = self.sinks[space]
        wanted = record_prefix + prefix
        record_type = projection.sink.record_types.get(space) if projection.sink else None
        if record_type is not None:
            # The model registry among every user's list: FerretDB answers an equality on a
            # top-level field in its backend (15 ms here) but an `_id` prefix only by reading the
            # whole collection (3-6 s with 1,300 lists on a busy store, growing with it).
            query: dict[str, Any] = {"type": get_topic(record_type)}
        else:
            query = {"_id": {"$regex": f"^{re.escape(wanted)}"}}
        ids = [doc["_id"] async for doc in self.db[collection].find(query, {"_id": 1})]
        return sorted(i[len(record_prefix):] for i in ids if i.startswith(wanted))

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out = {}
        for space in spaces:
            keys = await self.keys(space)
            docs = await self.get_docs(space, keys)
            out[space] = {"zsets": {}, "docs": dict(zip(keys, docs, strict=True))}
        return out

    # Writes belong to Kafka Connect; sorted sets do not live here.
    async def apply(self, projection: str, batch: Batch) -> None:
        raise NotImplementedError(f"{projection} is kept by Kafka Connect's MongoDB sink, not by a projector")

    async def positions(self, projection: str) -> dict[str, int]:
        return {}

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        """Empty the sink's collections (replay then resets the sink's offsets)."""
        for name in {self.sinks[s][0] for s in spaces}:
            await self.db.drop_collection(name)

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        return []

    async def score(self, space: str, key: str, member: str) -> float | None:
        return None

    async def close(self) -> None:
        await self.client.close()
