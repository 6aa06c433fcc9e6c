"""How much each interaction counts, from configuration.

A like is worth more than a view, a dislike counts against an item, and a rating counts by its
distance from the centre of the scale (5 stars is strongly positive, 1 star negative). Popularity
and the training matrix both read weights from here, so they always agree.
"""

from __future__ import annotations

from collections.abc import Mapping


class UnknownAction(ValueError):
    """An action without a configured weight."""


class ActionWeights:
    def __init__(self, weights: Mapping[str, float], rating_center: float = 3.0):
        self._weights = dict(weights)
        self.rating_center = rating_center

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self._weights)

    def __contains__(self, action: object) -> bool:
        return action in self._weights

    def weight(self, action: str, value: float | None = None) -> float:
        """The signed weight of one interaction."""
        try:
            base = self._weights[action]
        except KeyError:
            raise UnknownAction(
                f"unknown action {action!r}; configured: {', '.join(self._weights)}"
            ) from None
        if action == "rating":
            if value is None:
                return 0.0
            return base * (value - self.rating_center)
        return base

    def as_dict(self) -> dict[str, float]:
        return dict(self._weights)
