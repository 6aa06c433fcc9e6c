"""What each user has interacted with, and when last: the seen-items filter and the history route.

Keeping the latest time per (user, item) is a maximum, so redelivered events need no guard.
"""

from __future__ import annotations

from typing import ClassVar

from domain.events import INTERACTIONS, InteractionRecorded, MovieAugurEvent
from projections.base import NO_EFFECT, Projection
from projections.changes import Effect, ScoreMax

SPACE = "history"


class HistoryProjection(Projection):
    name: ClassVar[str] = "history"
    streams: ClassVar[tuple[str, ...]] = (INTERACTIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, InteractionRecorded):
            return Effect(changes=(ScoreMax(SPACE, event.user_id, event.item_key, float(event.occurred_at)),))
        return NO_EFFECT
