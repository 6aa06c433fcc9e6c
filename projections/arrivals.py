"""New arrivals: per item type, every item with the time it was first catalogued.

Fed by `ItemArrived` (one per item, recorded by the arrival notifier from the items stream; see
domain/events.py for why that fact lives on a stream of its own). The score is minus the arrival
time, kept with `ScoreMax`: the earliest arrival wins, so an item that somehow arrives twice (a
retry older than the log's duplicate horizon) keeps its first date, and re-cataloguing an item,
which records no arrival at all, never moves it. Newest first is the ascending order of that
score, read as `top` with weight -1 (a weighted read scans the item type's set: fine for a
catalog's size, and the only order the ViewStore port offers besides descending).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from domain.events import NOTIFICATIONS, ItemArrived, MovieAugurEvent
from projections.base import NO_EFFECT, Projection
from projections.changes import Effect, ScoreMax, ViewStore

SPACE = "arrivals"


def arrival_score(event: ItemArrived) -> float:
    """Minus the arrival time in seconds (the same float for the same event, every time)."""
    return -event.timestamp.timestamp()


class ArrivalsProjection(Projection):
    name: ClassVar[str] = "arrivals"
    streams: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, ItemArrived):
            return Effect(changes=(ScoreMax(SPACE, event.item_type, event.item_id, arrival_score(event)),))
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def read_newest(store: ViewStore, item_type: str, offset: int, limit: int) -> list[tuple[str, float]]:
    """(item_id, arrival time in Unix seconds), newest first."""
    return await store.top(SPACE, {item_type: -1.0}, offset, limit)


async def arrival_scores(store: ViewStore, item_type: str, item_ids: Sequence[str]) -> list[float | None]:
    """Each item's stored score (see arrival_score), None for an item that has not arrived."""
    return await store.scores(SPACE, item_type, item_ids)
