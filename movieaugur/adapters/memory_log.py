"""An in-memory event log with Kafka's semantics: keyed partitions, offsets from 0, and no
deduplication (a retried append is appended again, as an at-least-once producer would).

It is the plain-old-Python-objects adapter of the log port, as eventsourcing ships POPO recorders:
for unit and property tests of projection logic that must hold under redelivery, and nothing else.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from domain.codec import EventCodec
from domain.events import STREAMS, MovieAugurEvent
from domain.ports import AppendResult, EventLog, LoggedEvent, Position, ReadResult


class MemoryEventLog(EventLog):
    def __init__(self, partitions: int = 3, codec: EventCodec | None = None):
        self.codec = codec or EventCodec()
        self.partition_count = partitions
        # Records are kept encoded, so every read decodes like a real adapter does.
        self._records: dict[str, list[list[bytes]]] = {s: [[] for _ in range(partitions)] for s in STREAMS}

    def partition_of(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.partition_count

    async def append(self, events: Sequence[MovieAugurEvent]) -> AppendResult:
        encoded = [(e.stream, self.partition_of(e.key), self.codec.encode(e)) for e in events]
        for stream, partition, record in encoded:
            self._records[stream][partition].append(record)
        return AppendResult(appended=len(encoded))

    async def partitions(self, stream: str) -> list[int]:
        return list(range(self.partition_count))

    async def end_offsets(self, stream: str) -> dict[int, int]:
        return {p: len(records) for p, records in enumerate(self._records[stream])}

    async def read(self, stream: str, partition: int, start: int, limit: int) -> ReadResult:
        records = self._records[stream][partition][start : start + limit]
        events = [
            LoggedEvent(Position(stream, partition, start + i), self.codec.decode(record))
            for i, record in enumerate(records)
        ]
        return ReadResult(events, start + len(events))
