"""Popularity per item type: signed interaction weight summed per item, all-time and per UTC day.

Day buckets keep the projection a pure function of the log (no wall clock): windows (1d, 7d, 30d)
and time decay are applied when reading, by weighting the buckets (see queries/popularity.py).
External popularity lists (TMDB) are kept as documents beside the internal counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from domain.events import INTERACTIONS, POPULARITY, InteractionRecorded, MovieAugurEvent, PopularityObserved
from domain.weights import ActionWeights
from projections.base import NO_EFFECT, Projection
from projections.changes import DocPut, Effect, ScoreAdd, ViewStore

SECONDS_PER_DAY = 86_400
SPACE = "popularity"
EXTERNAL_SPACE = "popularity_external"


def all_time_key(item_type: str) -> str:
    return f"{item_type}:all"


def day_key(item_type: str, day: int) -> str:
    return f"{item_type}:d{day}"


def external_key(item_type: str, source: str) -> str:
    return f"{item_type}:{source}"


class PopularityProjection(Projection):
    name: ClassVar[str] = "popularity"
    streams: ClassVar[tuple[str, ...]] = (INTERACTIONS, POPULARITY)
    spaces: ClassVar[tuple[str, ...]] = (SPACE, EXTERNAL_SPACE)

    def __init__(self, weights: ActionWeights):
        self.weights = weights

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, InteractionRecorded):
            weight = self.weights.counted(event.action, event.value)
            if weight == 0.0:
                return NO_EFFECT
            item_type, item_id = event.item_type, event.item_id
            day = event.occurred_at // SECONDS_PER_DAY
            return Effect((ScoreAdd(SPACE, all_time_key(item_type), item_id, weight),
                           ScoreAdd(SPACE, day_key(item_type, day), item_id, weight)), event.event_id)
        if isinstance(event, PopularityObserved):
            doc = {"source": event.source, "observed_at": event.occurred_at, "items": event.items}
            return Effect(changes=(DocPut(EXTERNAL_SPACE, external_key(event.item_type, event.source), doc),))
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def read_top(store: ViewStore, buckets: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
    """(item_id, score) by the weighted sum of the given buckets (see all_time_key, day_key)."""
    return await store.top(SPACE, buckets, offset, limit)


async def read_all_time(store: ViewStore, item_type: str, item_id: str) -> float | None:
    return await store.score(SPACE, all_time_key(item_type), item_id)


async def read_external(store: ViewStore, item_type: str, source: str) -> dict[str, Any] | None:
    [doc] = await store.get_docs(EXTERNAL_SPACE, [external_key(item_type, source)])
    return doc


async def external_sources(store: ViewStore, item_type: str) -> list[str]:
    return [key.split(":", 1)[1] for key in await store.keys(EXTERNAL_SPACE, f"{item_type}:")]
