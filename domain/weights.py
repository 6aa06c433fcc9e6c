"""How much each interaction counts, from configuration.

A like is worth more than a view, a dislike counts against an item, and a rating counts by its
distance from the centre of the scale (5 stars is strongly positive, 1 star negative). Popularity
and the training matrix both read weights from here, so they always agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class UnknownAction(ValueError):
    """An action without a configured weight."""


class ActionWeights:
    def __init__(
        self,
        weights: Mapping[str, float],
        rating_center: float = 3.0,
        rating_range: tuple[float, float] = (0.5, 5.0),
    ):
        bad = {name: w for name, w in weights.items() if not math.isfinite(w)}
        if bad:
            raise ValueError(f"action weights must be finite numbers: {bad}")
        low, high = rating_range
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"rating range {rating_range} must be two finite numbers, low <= high")
        self._weights = dict(weights)
        self.rating_center = rating_center
        self.rating_range = (low, high)

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self._weights)

    def __contains__(self, action: object) -> bool:
        return action in self._weights

    def weight(self, action: str, value: float | None = None) -> float:
        """The signed weight of one interaction."""
        if action not in self._weights:
            raise UnknownAction(
                f"unknown action {action!r}; configured: {', '.join(self._weights)}"
            )
        return self.counted(action, value)

    def counted(self, action: str, value: float | None = None) -> float:
        """What one logged interaction counts: its weight, or nothing for an action the
        configuration no longer weighs (the projections' per-event path: one call, no exception)."""
        base = self._weights.get(action)
        if base is None:
            return 0.0
        if action == "rating":
            # The write API refuses ratings outside the range; events logged before it did (or
            # imported) count nothing rather than poisoning popularity or the trainer.
            if value is None or not self.rating_range[0] <= value <= self.rating_range[1]:
                return 0.0
            return base * (value - self.rating_center)
        return base
