"""What a projection is: a name, the streams it reads, the spaces it owns, and a pure mapping from
each event to its effect on the view."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from domain.events import MovieAugurEvent
from projections.changes import Effect

NO_EFFECT = Effect(changes=())


class Projection(ABC):
    name: ClassVar[str]
    streams: ClassVar[tuple[str, ...]]
    spaces: ClassVar[tuple[str, ...]]

    @abstractmethod
    def effect(self, event: MovieAugurEvent) -> Effect:
        """The view changes this event causes (NO_EFFECT for events it ignores)."""
