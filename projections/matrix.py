"""The user × item matrix: each user's summed, signed interaction weight per item.

A materialized matrix for consumers that want a user's profile without reading the log (analytics,
online re-ranking, a trainer that chooses to start from it). Each event counts once (guarded by its
event id). Training itself reads the whole log (offline/training/interaction_matrix.py) so that it can apply time
decay and new weights retroactively.
"""

from __future__ import annotations

from typing import ClassVar

from domain.events import INTERACTIONS, InteractionRecorded, MovieAugurEvent
from domain.weights import ActionWeights
from projections.base import NO_EFFECT, Projection
from projections.changes import Effect, ScoreAdd

SPACE = "matrix"


class UserItemMatrixProjection(Projection):
    name: ClassVar[str] = "matrix"
    streams: ClassVar[tuple[str, ...]] = (INTERACTIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def __init__(self, weights: ActionWeights):
        self.weights = weights

    def effect(self, event: MovieAugurEvent) -> Effect:
        if not isinstance(event, InteractionRecorded):
            return NO_EFFECT
        weight = self.weights.counted(event.action, event.value)
        if weight == 0.0:  # also an action the configuration no longer weighs
            return NO_EFFECT
        return Effect((ScoreAdd(SPACE, event.user_id, event.item_key, weight),), event.event_id)
