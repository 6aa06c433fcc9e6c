"""Ports: what the core needs from the outside world, with no word about how it is stored.

The event log is a set of streams, each split into partitions of ordered offsets. That is Kafka's
shape (topic, partition, offset); the embedded SQLite log is the special case of one partition per
stream whose offsets are notification ids. Projections track "the next offset to read" per
(stream, partition), so they run unchanged on either adapter.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from domain.events import MovieAugurEvent


# Position and LoggedEvent are values, but not frozen dataclasses: every event read builds one of
# each, and a frozen one costs four times as much to build (projections/changes.py).
@dataclass(slots=True)
class Position:
    stream: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        """The tracking name of this position's partition."""
        return f"{self.stream}/{self.partition}"


@dataclass(slots=True)
class LoggedEvent:
    position: Position
    event: MovieAugurEvent


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Events read from one partition, and the offset to read from next.

    `next_offset` may be past the last event: Kafka's transaction markers occupy offsets that carry
    no event, and a reader must be able to record that it has moved past them.
    """

    events: list[LoggedEvent]
    next_offset: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    appended: int
    duplicates: int = 0


class LogUnavailable(RuntimeError):
    """The log cannot take writes now; nothing of the batch was appended. Try again later."""


class OutcomeUnknown(LogUnavailable):
    """The log was asked to commit the batch and did not answer in time: it may hold the batch or
    not. A retry with the same event ids takes them once either way (the log finds out which)."""


class EventIdConflict(ValueError):
    """An event reuses the event_id of one already in the log (or earlier in the same batch) with
    different content. Nothing of the batch was appended."""

    def __init__(self, event_id: str):
        super().__init__(f"event_id {event_id!r} was already recorded with different content")
        self.event_id = event_id


#: How long a scan waits on a partition that returns nothing before its end before it gives up.
SCAN_STALL_SECONDS = 30.0


class EventLog(ABC):
    """Append-only, partitioned, replayable log of domain events."""

    #: True when the log can never hold two events with one event_id (the embedded log: its
    #: primary key is derived from the id). Projectors then skip their per-event duplicate guards,
    #: which would check the same fact a second time; a log that may redeliver (Kafka) keeps False.
    unique_event_ids: bool = False

    @abstractmethod
    async def append(self, events: Sequence[MovieAugurEvent]) -> AppendResult:
        """Append all events or none; return only once every appended event is durable.

        An event whose event_id the log already holds with the same content (fingerprint) is a
        duplicate and is not appended again; with different content, EventIdConflict is raised
        and nothing is appended. Raises LogUnavailable when the log cannot be reached.
        """

    @abstractmethod
    async def partitions(self, stream: str) -> list[int]:
        """The partitions of a stream (that this reader may read)."""

    @abstractmethod
    async def end_offsets(self, stream: str) -> dict[int, int]:
        """Per partition, the offset the next appended event will get."""

    @abstractmethod
    async def read(self, stream: str, partition: int, start: int, limit: int) -> ReadResult:
        """Up to `limit` events at offsets >= start, in order (fewer, or none, when there are no
        more right now), and where to continue."""

    async def wait_for_events(self, streams: Sequence[str], timeout: float) -> None:
        """Return early when new events may have arrived; adapters that cannot tell just wait."""
        await asyncio.sleep(timeout)

    async def renew_readers(self) -> None:  # noqa: B027 - optional for adapters
        """Drop the readers' connections and fetch state; the next read starts afresh. A projector
        calls it when its view stays behind the log with no progress (a Kafka consumer can stop
        fetching after broker failures); adapters whose reads hold no such state do nothing."""

    async def start(self) -> None:  # noqa: B027 - optional for adapters
        """Connect or prepare (create topics, open files) before the first call, where needed."""

    async def close(self) -> None:  # noqa: B027 - optional for adapters
        """Release connections."""

    async def scan(self, stream: str, batch: int = 5000):
        """Every event of a stream from the beginning to the end as of the call (for training).

        A read that returns nothing before the end is not the end: a Kafka read answers empty when
        its fetch has not arrived within the read's short wait (under load, often). Taking that as
        the end once made a scan skip the rest of a partition; it is read again, and only a
        partition that makes no progress for SCAN_STALL_SECONDS fails the scan (LogUnavailable)."""
        ends = await self.end_offsets(stream)
        for partition, end in sorted(ends.items()):
            start = 0
            stalled_since: float | None = None
            while start < end:
                result = await self.read(stream, partition, start, batch)
                if result.next_offset <= start:
                    now = time.monotonic()
                    stalled_since = stalled_since or now
                    if now - stalled_since > SCAN_STALL_SECONDS:
                        raise LogUnavailable(f"{stream} partition {partition}: no progress at offset {start} of {end} "
                                             f"for {SCAN_STALL_SECONDS:.0f}s; is the log reachable?")
                    await asyncio.sleep(0.01)
                    continue
                stalled_since = None
                for logged in result.events:
                    if logged.position.offset >= end:
                        return
                    yield logged
                start = result.next_offset
