"""Views in this process's memory: what a query process keeps close to answer without a round trip.

The query service hydrates every list it answers with catalog metadata; asking the view store for
it on each request costs a store round trip (or a thread hop) per request, and in distributed mode
it ties read latency to the document store's write load. So each query process runs the catalog
projection itself into this store, from the log (the compacted items topic in distributed mode),
with the same projection code and the same runner as any other view. It applies batches the way
the other stores do (tracking positions and guards together), so it is exactly as correct; it just
does not survive a restart, after which it catches up from the log again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from projections.changes import Batch, DocPut, ScoreAdd, ScoreMax, ScoreRemove, StaleTracking, ViewStore


class MemoryViewStore(ViewStore):
    def __init__(self) -> None:
        self.zsets: dict[str, dict[str, dict[str, float]]] = {}  # space -> key -> member -> score
        self.docs: dict[str, dict[str, dict[str, Any]]] = {}  # space -> key -> document
        self.tracking: dict[str, dict[str, int]] = {}  # projection -> source -> next offset
        self.guards: dict[tuple[str, str], dict[str, int]] = {}  # (projection, source) -> guard -> offset
        self._revision = 0  # moves with every apply and drop (see ViewStore.revision)

    # -- projector side ------------------------------------------------------------------------

    async def apply(self, projection: str, batch: Batch) -> None:
        self._revision += 1  # first: a refused batch moves it needlessly, which costs one rebuilt answer
        positions = self.tracking.setdefault(projection, {})
        for source, next_offset in batch.next_offsets.items():
            if positions.get(source, -1) >= next_offset:
                raise StaleTracking(f"{projection}: {source} already at {positions[source]}")
        guards = self.guards.setdefault((projection, batch.source), {})
        for effect in batch.effects:
            if effect.guard is not None:
                seen = guards.get(effect.guard)
                if seen is not None and effect.at - seen <= batch.horizon:
                    continue
                guards[effect.guard] = effect.at
            for change in effect.changes:
                if isinstance(change, DocPut):
                    self.docs.setdefault(change.space, {})[change.key] = change.doc
                    continue
                if isinstance(change, ScoreRemove):
                    zsets = self.zsets.get(change.space, {})
                    members = zsets.get(change.key, {})
                    if change.member is not None:
                        members.pop(change.member, None)
                    if change.member is None or not members:  # an empty sorted set is no key
                        zsets.pop(change.key, None)
                    continue
                members = self.zsets.setdefault(change.space, {}).setdefault(change.key, {})
                if isinstance(change, ScoreAdd):
                    members[change.member] = members.get(change.member, 0.0) + change.delta
                elif isinstance(change, ScoreMax):
                    members[change.member] = max(members.get(change.member, change.score), change.score)
        cutoff = batch.guard_cutoff()
        for guard in [g for g, at in guards.items() if at < cutoff]:
            del guards[guard]
        positions.update(batch.next_offsets)

    async def positions(self, projection: str) -> dict[str, int]:
        return dict(self.tracking.get(projection, {}))

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        self._revision += 1
        for space in spaces:
            self.zsets.pop(space, None)
            self.docs.pop(space, None)
        self.tracking.pop(projection, None)
        for key in [k for k in self.guards if k[0] == projection]:
            del self.guards[key]

    # -- query side ----------------------------------------------------------------------------

    async def revision(self, spaces: Sequence[str]) -> int:
        return self._revision

    def doc(self, space: str, key: str) -> dict[str, Any] | None:
        """One document, synchronously: for callers on the hot path that need no await."""
        return self.docs.get(space, {}).get(key)

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        totals: dict[str, float] = {}
        for key, weight in keys.items():
            for member, score in self.zsets.get(space, {}).get(key, {}).items():
                totals[member] = totals.get(member, 0.0) + weight * score
        ranked = sorted(totals.items(), key=lambda row: (row[1], row[0]), reverse=True)
        return ranked[offset : offset + limit]

    async def score(self, space: str, key: str, member: str) -> float | None:
        return self.zsets.get(space, {}).get(key, {}).get(member)

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        docs = self.docs.get(space, {})
        return [docs.get(key) for key in keys]

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        names = set(self.zsets.get(space, {})) | set(self.docs.get(space, {}))
        return sorted(k for k in names if k.startswith(prefix))

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        return {
            space: {
                "zsets": {k: dict(v) for k, v in self.zsets.get(space, {}).items() if v},
                "docs": dict(self.docs.get(space, {})),
            }
            for space in spaces
        }
