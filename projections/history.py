"""What each user has interacted with, and when last: the seen-items filter and the history route.

Keeping the latest time per (user, item) is a maximum, so redelivered events need no guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from domain.events import INTERACTIONS, InteractionRecorded, MovieAugurEvent
from projections.base import NO_EFFECT, Projection
from projections.changes import Effect, ScoreMax, ViewStore

SPACE = "history"


class HistoryProjection(Projection):
    name: ClassVar[str] = "history"
    streams: ClassVar[tuple[str, ...]] = (INTERACTIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, InteractionRecorded):
            return Effect(changes=(ScoreMax(SPACE, event.user_id, event.item_key, float(event.occurred_at)),))
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def seen_among(store: ViewStore, user_id: str, item_keys: Sequence[str]) -> set[str]:
    """Which of these "type:id" items the user has interacted with: asks about the candidates
    only, so a heavy user's long history costs nothing extra."""
    scores = await store.scores(SPACE, user_id, item_keys)
    return {key for key, score in zip(item_keys, scores, strict=True) if score is not None}


async def read_history(store: ViewStore, user_id: str, offset: int, limit: int) -> list[tuple[str, float]]:
    """("type:id", last interaction time), most recent first."""
    return await store.top(SPACE, {user_id: 1.0}, offset, limit)
