"""Which interactions an operator has neutralized, and the one rule for whether one is covered.

The log is append-only, so undoing bad input is itself an event (`EventsRedacted`) on a stream of
its own. Projectors and the trainer read that small stream first and skip every interaction it
covers; a replay after the redaction therefore builds the view that a log without those events
would have built. The rule lives here, once, so the projections and the trainer cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.events import EventsRedacted, InteractionRecorded, MovieAugurEvent


@dataclass(frozen=True)
class _Range:
    user_id: str | None
    source: str | None
    from_time: int | None
    until_time: int | None

    def covers(self, event: InteractionRecorded) -> bool:
        if self.user_id is not None and event.user_id != self.user_id:
            return False
        if self.source is not None and event.source != self.source:
            return False
        at = event.occurred_at
        if self.from_time is not None and at < self.from_time:
            return False
        return self.until_time is None or at < self.until_time


@dataclass
class Redactions:
    """The redactions known so far (they only grow)."""

    event_ids: set[str] = field(default_factory=set)
    ranges: list[_Range] = field(default_factory=list)

    @classmethod
    def of(cls, redactions: Iterable[EventsRedacted]) -> Redactions:
        known = cls()
        for redaction in redactions:
            known.add(redaction)
        return known

    def add(self, redaction: EventsRedacted) -> None:
        self.event_ids.update(redaction.event_ids)
        if redaction.user_id is not None or redaction.source is not None:
            self.ranges.append(_Range(redaction.user_id, redaction.source, redaction.from_time, redaction.until_time))

    def __bool__(self) -> bool:
        return bool(self.event_ids or self.ranges)

    def covers(self, event: MovieAugurEvent) -> bool:
        """True for an interaction that must count as never posted."""
        if not isinstance(event, InteractionRecorded):
            return False
        return event.event_id in self.event_ids or any(r.covers(event) for r in self.ranges)
