"""Fresh recommendations at query time: the port the read side needs from a model runtime, what it
reads for it, and the rule that gives cold items their slots.

The model math (fold-in, the content model) lives in offline/ beside the models, because the
evaluation runs the same code; queries/ and offline/ are siblings and never import each other. So
the query service depends on the `ModelRuntime` port below, and the composition root
(movieaugur/app.py) injects offline/serving.py's implementation — the same move as the `ViewStore`
port with its adapters. A service built without a runtime answers exactly as before (published
lists, popularity fallback).

Cold items: of every list of `limit`, `cold_slot_count(limit, share)` slots (share
MOVIEAUGUR_COLD_ITEM_SHARE, default 0.1: 2 of 20, 1 of 10) go to catalogued items the model has no
interactions for, ranked by the user's content profile, spread evenly (positions 5 and 15 of 20);
a slot no cold item qualifies for stays with the ranked list.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from kernel.settings import Settings
from projections import matrix as matrix_view
from projections import popularity as popularity_view
from projections.changes import ViewStore
from queries.model_versions import ModelVersions

Scored = list[tuple[str, float]]  # ("item_type:item_id", score), best first
T = TypeVar("T")


class ModelRuntime(Protocol):
    """What the read side asks of the model runtime (offline/serving.py). Every method answers
    None or an empty list when it cannot, never raises for a missing or broken model."""

    def revision(self) -> Hashable:
        """A value that changes whenever an answer could change for the same arguments (a model
        version loaded, the content index rebuilt or grown)."""
        ...

    async def recommend(
        self, model: str, version: str, weights: Mapping[str, float], n: int,
        item_type: str | None, exclude: Collection[str],
    ) -> Scored | None:
        """Fold-in: the best n items of the model version for a user with these interaction
        weights ("type:id" → summed weight), the user's own items and `exclude` left out; None
        when fold-in cannot run (off, no artifacts, no positive interaction with a known item)."""
        ...

    async def cold_items(
        self, model: str, version: str | None, weights: Mapping[str, float], n: int,
        item_type: str | None, exclude: Collection[str],
    ) -> tuple[Scored, bool]:
        """Catalogued items the model version has no interactions for, ranked by the user's content
        profile, and whether the model's item set was known (False: every catalogued item was a
        candidate, and the caller tells cold from warm itself)."""
        ...

    async def similar(self, item_key: str, n: int, item_type: str | None) -> Scored | None:
        """Content similarity: the n items most like a catalogued item; None if it is not catalogued."""
        ...


@dataclass
class FreshUser:
    """What one recommendations request knows for fresh scoring."""

    user_id: str
    model: str
    version: str | None  # the model name's current version, None before any is published
    weights: dict[str, float] = field(default_factory=dict)  # "type:id" → summed weight (matrix view)


class FreshReads:
    """The reads fresh scoring needs: the current model version (queries/model_versions.py: cached,
    refreshed off the request path) and the user's interaction weights from the `matrix` view (the
    strongest `max_history`)."""

    def __init__(self, store: ViewStore, settings: Settings, versions: ModelVersions | None = None) -> None:
        self.store = store
        self.max_history = settings.fold_in_max_history
        self.versions = versions or ModelVersions(store)

    async def version(self, name: str) -> str | None:
        return await self.versions.version(name)

    async def weights(self, user_id: str) -> dict[str, float]:
        rows = await self.store.top(matrix_view.SPACE, {user_id: 1.0}, 0, self.max_history)
        return {member: score for member, score in rows if score}

    async def user(self, user_id: str, model: str) -> FreshUser:
        return FreshUser(user_id, model, await self.version(model), await self.weights(user_id))

    async def without_interactions(self, scored: Scored) -> Scored:
        """The entries whose item nobody has interacted with (no all-time popularity entry): the
        cold items when no model version tells which items it knows."""
        by_type: dict[str, list[str]] = {}
        for key, _ in scored:
            item_type, _, item_id = key.partition(":")
            by_type.setdefault(item_type, []).append(item_id)
        known: set[str] = set()
        for item_type, ids in by_type.items():
            scores = await self.store.scores(popularity_view.SPACE, popularity_view.all_time_key(item_type), ids)
            known.update(f"{item_type}:{i}" for i, s in zip(ids, scores, strict=True) if s is not None)
        return [(key, score) for key, score in scored if key not in known]


def cold_slot_count(limit: int, share: float) -> int:
    """Slots of a list of `limit` that go to cold items: limit × share rounded half up."""
    return max(0, min(limit, int(limit * share + 0.5)))


def cold_positions(limit: int, slots: int) -> list[int]:
    """0-based positions of the cold slots, spread evenly (centres of equal parts, rounded half up):
    20 and 2 → 4 and 14 (5th and 15th), 5 and 1 → 2 (the 3rd)."""
    return [max(0, int(limit * (2 * j + 1) / (2 * slots) + 0.5) - 1) for j in range(slots)]


def interleave(ranked: Sequence[T], cold: Sequence[T], limit: int, slots: int) -> list[T]:
    """`ranked` with up to `slots` cold entries placed at `cold_positions`, cut to `limit`."""
    cold = list(cold[:slots])
    if not cold:
        return list(ranked[:limit])
    out = list(ranked[: limit - len(cold)])
    for position, item in zip(cold_positions(limit, slots), cold, strict=False):
        out.insert(min(position, len(out)), item)
    return out[:limit]
