"""The embedded event log: eventsourcing's SQLite application recorder, one table per stream.

Each stream is one partition whose offsets are the recorder's notification ids. Appends are one
transaction for the whole batch (all or nothing) and skip events whose event_id is already in the
log with the same content, so a retried request appends nothing twice; the same id with other
content refuses the whole batch (EventIdConflict). The horizon of this check is the whole log. The recorder has no subscribe(): readers poll,
and an in-process condition wakes them as soon as this process appends.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from domain.codec import EventCodec
from domain.events import STREAMS, MovieAugurEvent
from domain.ports import AppendResult, EventIdConflict, EventLog, LoggedEvent, Position, ReadResult
from movieaugur.adapters.sqlite_datastore import sqlite_datastore
from movieaugur.adapters.threads import BlockingPool

_SQLITE_MAX_VARS = 900
# Event ids index by a random UUID: every insert lands on a random index page, and SQLite's default
# 2 MB page cache turns a large log's appends into page reads (measured: 1M-event import 9 % faster
# at 128 MB).
_WRITE_CACHE_KIB = 128 * 1024


def _stored_id(stored: StoredEvent) -> str:
    """The originator id as the recorder writes it (a UUID's hex)."""
    oid = stored.originator_id
    return oid.hex if hasattr(oid, "hex") and not isinstance(oid, str) else str(oid)


class SQLiteEventLog(EventLog):
    # A stream's table is keyed by the originator id, which is derived from the event_id
    # (domain/events.py originator_for): the same id cannot be stored twice, so cannot be read twice.
    unique_event_ids = True

    def __init__(self, path: Path | str, codec: EventCodec | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = codec or EventCodec()
        self.pool = BlockingPool("sqlite-log")
        # Held while writing (see _append_sync) and while creating the tables: two processes opening
        # a new log at once (parallel importers) otherwise race on switching it to WAL and creating
        # tables, and one fails with "database is locked" (seen in 14 of 30 tries with three).
        self._file_lock = self.path.with_name(self.path.name + ".write-lock").open("a+b")
        with self._locked():
            self.datastore = sqlite_datastore(str(self.path), originator_id_type="text", cache_kib=_WRITE_CACHE_KIB)
            self.recorders = {
                stream: SQLiteApplicationRecorder(self.datastore, events_table_name=f"{stream}_events")
                for stream in STREAMS
            }
            for recorder in self.recorders.values():
                recorder.create_table()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        # One writer at a time: SQLite serialises writers anyway, and the duplicate check below
        # must see the previous batch. The file lock extends that to other processes (parallel
        # importers, a CLI beside a server): the recorder's deferred BEGIN would otherwise let two
        # of them read, then fail to upgrade to a write with "database is locked".
        self._write_lock = asyncio.Lock()

    # -- writes -------------------------------------------------------------------------------

    async def append(self, events: Sequence[MovieAugurEvent]) -> AppendResult:
        async with self._write_lock:
            # Encoding runs in the worker thread too: a 20,000-event batch must not stall the loop.
            result, streams = await self.pool.run(self._append_sync, events)
        for stream in streams:
            self._signal(stream)
        return result

    def _append_sync(self, events: Sequence[MovieAugurEvent]) -> tuple[AppendResult, list[str]]:
        by_stream: dict[str, list[tuple[MovieAugurEvent, StoredEvent]]] = {}
        for event in events:
            by_stream.setdefault(event.stream, []).append((event, self.codec.stored(event)))
        with self._locked():  # encoding above runs in parallel with other processes; this part does not
            return self._insert(by_stream)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._file_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._file_lock, fcntl.LOCK_UN)

    def _insert(self, by_stream: dict[str, list[tuple[MovieAugurEvent, StoredEvent]]]) -> tuple[AppendResult, list[str]]:
        appended = duplicates = 0
        with self.datastore.transaction(commit=True) as cursor:
            for stream, batch in by_stream.items():
                recorder = self.recorders[stream]
                fresh = self._without_known(cursor, recorder.events_table_name, batch)
                duplicates += len(batch) - len(fresh)
                if fresh:
                    # The recorder's own statement, in one executemany (its _insert_events goes row
                    # by row to collect row ids, which a log append does not need).
                    cursor.executemany(
                        recorder.insert_events_statement,
                        [(_stored_id(s), s.originator_version, s.topic, s.state) for s in fresh],
                    )
                    appended += len(fresh)
        return AppendResult(appended=appended, duplicates=duplicates), list(by_stream)

    def _without_known(
        self, cursor: Any, table: str, batch: list[tuple[MovieAugurEvent, StoredEvent]]
    ) -> list[StoredEvent]:
        """Drop events already in the log and repeats within the batch (first one wins); an id
        already taken by different content raises EventIdConflict (the transaction rolls back)."""
        ids = list(dict.fromkeys(_stored_id(s) for _, s in batch))
        known: dict[str, str] = {}  # stored id -> fingerprint of what the log holds
        for i in range(0, len(ids), _SQLITE_MAX_VARS):
            chunk = ids[i : i + _SQLITE_MAX_VARS]
            cursor.execute(
                f"SELECT originator_id, topic, state FROM {table} WHERE originator_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for originator_id, topic, state in cursor.fetchall():
                known[originator_id] = self.codec.decode_stored(
                    StoredEvent(originator_id=originator_id, originator_version=1, topic=topic, state=state)
                ).fingerprint
        # Fingerprints are computed only where an id repeats (an import is mostly fresh ids, and a
        # fingerprint is a tenth of an event's cost there).
        taken: dict[str, MovieAugurEvent] = {}
        fresh = []
        for event, stored in batch:
            key = _stored_id(stored)
            if key in known:
                if known[key] != event.fingerprint:
                    raise EventIdConflict(event.event_id)
                continue
            first = taken.get(key)
            if first is not None:
                if first.fingerprint != event.fingerprint:
                    raise EventIdConflict(event.event_id)
                continue
            taken[key] = event
            fresh.append(stored)
        return fresh

    # -- reads --------------------------------------------------------------------------------

    async def partitions(self, stream: str) -> list[int]:
        return [0]

    async def end_offsets(self, stream: str) -> dict[int, int]:
        last = await self.pool.run(self.recorders[stream].max_notification_id)
        return {0: last + 1 if last else 0}

    async def read(self, stream: str, partition: int, start: int, limit: int) -> ReadResult:
        notifications = await self.pool.run(
            self.recorders[stream].select_notifications, max(start, 1), limit
        )
        # The row's state is the whole self-describing record: the codec's one-parse decode (as
        # Kafka's reader uses) rather than eventsourcing's Mapper, which a replay paid a fifth of
        # its time for (test_record_round_trip holds the two equal).
        decode = self.codec.decode
        events = [LoggedEvent(Position(stream, 0, n.id), decode(n.state)) for n in notifications]
        return ReadResult(events, events[-1].position.offset + 1 if events else start)

    async def wait_for_events(self, streams: Sequence[str], timeout: float) -> None:
        """Sleep until this process appends to one of `streams`, or `timeout` passes (another
        process may have appended: the caller polls again either way)."""
        flag = asyncio.Event()
        for stream in streams:
            self._waiters.setdefault(stream, set()).add(flag)
        try:
            await asyncio.wait_for(flag.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            for stream in streams:
                self._waiters.get(stream, set()).discard(flag)

    def _signal(self, stream: str) -> None:
        for flag in self._waiters.get(stream, ()):
            flag.set()

    async def close(self) -> None:
        self.pool.shutdown()
        self.datastore.close()
        self._file_lock.close()
