"""Views written by projectors into a MongoDB-protocol store (FerretDB here, MongoDB in production).

FerretDB has no transactions, so a batch cannot be applied atomically with its tracking position.
The exactly-once effect comes from idempotence instead:
- a guarded score change (`ScoreAdd` with an event id) first makes sure its document exists (an
  idempotent upsert of nothing), then updates it with a filter that excludes documents already
  listing the event id (`guards: {$ne: id}`) and pushes the id, keeping the last
  GUARDS_PER_DOCUMENT; re-applying it matches nothing, so it counts once (no upsert ever races the
  guard, so no duplicate-key errors to interpret);
- `ScoreMax` ($max), `ScoreRemove` (delete) and `DocPut` (replace) are idempotent by nature, and
  so is a batch of them applied again in its order (what follows a member's last removal in the
  batch decides it);
- tracking is written after the batch with $max, so a crash in between re-applies the batch, which
  changes nothing.
Only flat documents and arrays of strings are stored (no nested arrays, no dotted keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient, DeleteMany, DeleteOne, ReplaceOne, UpdateOne

from projections.changes import Batch, DocPut, ScoreAdd, ScoreMax, ScoreRemove, ViewStore

SEP = "\x1f"  # between key and member in a score document's _id (cannot appear in JSON ids we make)
TRACKING = "view_tracking"
#: How many applied event ids one score document remembers (its dedupe horizon in this store: a
#: copy of an event after this many other guarded changes to the same (key, member) counts again).
GUARDS_PER_DOCUMENT = 1000


def _score_id(key: str, member: str) -> str:
    return f"{key}{SEP}{member}"


class MongoViewStore(ViewStore):
    def __init__(self, url: str, database: str):
        self.client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
        self.db = self.client[database]

    # -- projector side ------------------------------------------------------------------------

    async def apply(self, projection: str, batch: Batch) -> None:
        writes: dict[str, list[Any]] = {}
        for effect in batch.effects:
            for change in effect.changes:
                op: UpdateOne | ReplaceOne[Any] | DeleteOne | DeleteMany
                if isinstance(change, ScoreAdd):
                    _id = _score_id(change.key, change.member)
                    exists = UpdateOne(
                        {"_id": _id}, {"$setOnInsert": {"k": change.key, "m": change.member, "score": 0.0, "guards": []}}, upsert=True
                    )
                    writes.setdefault(change.space, []).append(exists)
                    if effect.guard is None:
                        op = UpdateOne({"_id": _id}, {"$inc": {"score": change.delta}})
                    else:
                        # The document remembers its last GUARDS_PER_DOCUMENT event ids ($slice):
                        # bounded, and decided by log order alone, so replay gives the same view.
                        update = {
                            "$inc": {"score": change.delta},
                            "$push": {"guards": {"$each": [effect.guard], "$slice": -GUARDS_PER_DOCUMENT}},
                        }
                        op = UpdateOne({"_id": _id, "guards": {"$ne": effect.guard}}, update)
                elif isinstance(change, ScoreMax):
                    update = {"$max": {"score": change.score}, "$setOnInsert": {"k": change.key, "m": change.member}}
                    op = UpdateOne({"_id": _score_id(change.key, change.member)}, update, upsert=True)
                elif isinstance(change, ScoreRemove):
                    if change.member is None:
                        op = DeleteMany({"k": change.key})
                    else:
                        op = DeleteOne({"_id": _score_id(change.key, change.member)})
                else:
                    op = ReplaceOne({"_id": change.key}, {"_id": change.key, "doc": change.doc}, upsert=True)
                writes.setdefault(change.space if not isinstance(change, DocPut) else f"{change.space}_docs", []).append(op)
        for collection, ops in writes.items():
            await self._write(collection, ops)
        for source, next_offset in batch.next_offsets.items():
            await self.db[TRACKING].update_one(
                {"_id": f"{projection}:{source}"}, {"$max": {"next": next_offset}, "$set": {"p": projection}}, upsert=True
            )

    async def _write(self, collection: str, ops: list[Any]) -> None:
        """In order: a later change to the same document must see the earlier one."""
        for start in range(0, len(ops), 1000):
            await self.db[collection].bulk_write(ops[start : start + 1000], ordered=True)

    async def positions(self, projection: str) -> dict[str, int]:
        cursor = self.db[TRACKING].find({"p": projection})
        return {doc["_id"].split(":", 1)[1]: int(doc["next"]) async for doc in cursor}

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        for space in spaces:
            await self.db.drop_collection(space)
            await self.db.drop_collection(f"{space}_docs")
        await self.db[TRACKING].delete_many({"p": projection})

    # -- query side ----------------------------------------------------------------------------

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        if len(keys) == 1 and next(iter(keys.values())) == 1.0:
            cursor = self.db[space].find({"k": next(iter(keys))}).sort([("score", -1), ("m", -1)]).skip(offset).limit(limit)
            return [(doc["m"], doc["score"]) async for doc in cursor]
        totals: dict[str, float] = {}
        async for doc in self.db[space].find({"k": {"$in": list(keys)}}):
            totals[doc["m"]] = totals.get(doc["m"], 0.0) + doc["score"] * keys[doc["k"]]
        ranked = sorted(totals.items(), key=lambda row: (row[1], row[0]), reverse=True)
        return ranked[offset : offset + limit]

    async def score(self, space: str, key: str, member: str) -> float | None:
        doc = await self.db[space].find_one({"_id": _score_id(key, member)})
        return doc["score"] if doc else None

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        ids = [_score_id(key, m) for m in members]
        found = {doc["_id"]: doc["score"] async for doc in self.db[space].find({"_id": {"$in": ids}})}
        return [found.get(i) for i in ids]

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        found = {doc["_id"]: doc["doc"] async for doc in self.db[f"{space}_docs"].find({"_id": {"$in": list(keys)}})}
        return [found.get(k) for k in keys]

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        zkeys = {k for k in await self.db[space].distinct("k") if k.startswith(prefix)}
        dkeys = {doc["_id"] async for doc in self.db[f"{space}_docs"].find({}, {"_id": 1}) if doc["_id"].startswith(prefix)}
        return sorted(zkeys | dkeys)

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for space in spaces:
            zsets: dict[str, dict[str, float]] = {}
            async for doc in self.db[space].find({}):
                zsets.setdefault(doc["k"], {})[doc["m"]] = doc["score"]
            docs = {doc["_id"]: doc["doc"] async for doc in self.db[f"{space}_docs"].find({})}
            out[space] = {"zsets": zsets, "docs": docs}
        return out

    async def close(self) -> None:
        await self.client.close()
