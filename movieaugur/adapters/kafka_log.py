"""The distributed event log: one Kafka topic per stream (contract §3), written transactionally.

Writes: every request's batch is one Kafka transaction of an idempotent producer (acks=all). The
call returns only after the commit, so an acknowledged event is durable on the broker; a failed or
timed-out batch is aborted, and readers (isolation_level=read_committed) never see any of it, so a
503 leaves nothing behind. Events are keyed (user for interactions) so per-key order holds.

Reads: one consumer per stream with manually assigned partitions; the caller passes the offset to
read from (the projection's own tracking), never a committed group offset. Transaction markers take
offsets too, which is why reads report the next offset rather than the last event's offset + 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from domain.codec import EventCodec
from domain.events import (
    INTERACTIONS,
    ITEMS,
    LISTS,
    NOTIFICATIONS,
    POPULARITY,
    RECOMMENDATIONS,
    REDACTIONS,
    STREAMS,
    MovieAugurEvent,
)
from domain.ports import AppendResult, EventIdConflict, EventLog, LoggedEvent, LogUnavailable, Position, ReadResult
from infra.replication import replication_for
from kernel.settings import Settings
from movieaugur.adapters.event_ids import RedisEventIds, parse_uncertain
from movieaugur.adapters.kafka_batches import send_batched
from movieaugur.adapters.kafka_outcomes import Anchor, Attempt, CommitUnanswered, settle_uncertain

log = logging.getLogger(__name__)

# Contract §3: interactions are the truth (never compacted, kept forever); items and
# recommendations are latest-per-key (compacted); external popularity lists are kept.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    INTERACTIONS: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    ITEMS: {"cleanup.policy": "compact"},
    POPULARITY: {"cleanup.policy": "delete", "retention.ms": "-1"},
    RECOMMENDATIONS: {"cleanup.policy": "compact"},
    REDACTIONS: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    # Users' list edits are the lists' only record: kept forever, like interactions.
    LISTS: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    # Arrivals and notifications rebuild their views on replay: kept forever, never compacted.
    NOTIFICATIONS: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
}
# Redactions are few and read whole by every projector: one partition keeps them in order.
TOPIC_PARTITIONS: dict[str, int] = {REDACTIONS: 1}
#: How long a read waits for its reader to know a partition's position. The reader's fetch loop
#: finds it (milliseconds, or a broker round trip after a rebalance); a reader whose fetch loop is
#: gone waited forever, each step then hung until its 60 s timeout before the projector could
#: notice the stall and renew its readers.
POSITION_WAIT_SECONDS = 10.0


class KafkaEventLog(EventLog):
    def __init__(
        self,
        settings: Settings,
        codec: EventCodec | None = None,
        write_timeout: float | None = None,
        group: str | None = None,
        event_ids: RedisEventIds | None = None,
    ):
        """With `group`, readers join that consumer group and read only the partitions the group
        assigns them (projector workers scale with partitions); without, they read every partition
        (training, replay). Either way, where to read from is the caller's tracking, never the
        group's committed offsets (none are committed)."""
        self.settings = settings
        self.group = group
        self.event_ids = event_ids
        self.codec = codec or EventCodec()
        self.bootstrap = settings.kafka_bootstrap
        self.write_timeout = settings.kafka_write_timeout_seconds if write_timeout is None else write_timeout
        self._producer: AIOKafkaProducer | None = None
        # One transactional id for every producer this log starts: the one that replaces a producer
        # dropped after a failure (a broker lost mid-transaction) fences it, and the coordinator
        # aborts its open transaction at once. With a new id each time that transaction stayed open
        # until it timed out, and read_committed readers (projectors) saw nothing past it meanwhile.
        self._transactional_id = f"movieaugur-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._producer_lock = asyncio.Lock()  # one transaction at a time per producer
        self._consumers: dict[str, AIOKafkaConsumer] = {}
        self._consumer_locks: dict[str, asyncio.Lock] = {s: asyncio.Lock() for s in STREAMS}
        self._create_lock = asyncio.Lock()  # the end-offsets reader's
        # One per stream: a projector's readers (and its redactions reader) start together rather
        # than one after another (~40 ms each at the start of every replay).
        self._creating: dict[str, asyncio.Lock] = {s: asyncio.Lock() for s in STREAMS}
        self._cleanups: set[asyncio.Future] = set()
        self._partitions: dict[str, list[int]] = {}
        # A reader that is never assigned partitions, so it never has a fetch in flight: see
        # end_offsets. `_offset_topics` are the topics its metadata already tracks.
        self._offsets_reader: AIOKafkaConsumer | None = None
        self._offset_topics: set[str] = set()
        self._pending: list[_Pending] = []
        self._committer: asyncio.Task[None] | None = None

    def topic(self, stream: str) -> str:
        return self.settings.topic(stream)

    # -- set-up ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create missing topics; tolerate an unreachable broker (writes then answer 503)."""
        try:
            await asyncio.wait_for(self.ensure_topics(), self.write_timeout * 3)
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning("Kafka at %s not reachable at start (%r); will retry on use", self.bootstrap, error)

    async def ensure_topics(self) -> None:
        """Create the missing topics with as many copies as the cluster's size allows (three, two in
        sync, from three brokers on; infra/replication.py), so a lost broker loses no acknowledged event."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            brokers = len((await admin.describe_cluster())["brokers"])
            factor, min_isr = replication_for(brokers)
            wanted = [
                NewTopic(self.topic(s), TOPIC_PARTITIONS.get(s, self.settings.kafka_partitions), factor,
                         topic_configs={**TOPIC_CONFIGS[s], "min.insync.replicas": str(min_isr)})
                for s in STREAMS
                if self.topic(s) not in existing
            ]
            if wanted:
                response = await admin.create_topics(wanted)
                for name, code, *_ in getattr(response, "topic_errors", getattr(response, "topic_error_codes", [])):
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise KafkaError(f"creating topic {name} failed with error code {code}")
        finally:
            await admin.close()

    # -- writes ----------------------------------------------------------------------------------

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                transactional_id=self._transactional_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=2,
                max_batch_size=512 * 1024,
                max_request_size=16 * 1024 * 1024,
                request_timeout_ms=int(self.write_timeout * 1000),
                # A transaction its producer never ended (the process died) holds back every
                # read_committed reader of its partitions until the coordinator aborts it: soon.
                transaction_timeout_ms=int(max(10.0, 3 * self.write_timeout) * 1000),
                compression_type="lz4" if _has_lz4() else None,
            )
            try:
                await producer.start()
            except BaseException:
                await _quietly_stop(producer)
                raise
            self._producer = producer
        return self._producer

    async def append(self, events: Sequence[MovieAugurEvent]) -> AppendResult:
        """Group commit: requests that arrive while a transaction is in flight wait for the next
        one and share it, so concurrent writers cost one commit per round instead of one each.
        Each request is still all or nothing: a failed transaction fails every request in it
        (503), and none of its events is visible to read_committed readers."""
        if not events:
            return AppendResult(0)
        fresh, fingerprints = await self._without_known(events)
        if not fresh:
            return AppendResult(appended=0, duplicates=len(events))
        records = [(self.topic(e.stream), e.key.encode(), self.codec.encode(e)) for e in fresh]
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(records, fingerprints, committed))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_rounds(), name="kafka-group-commit")
        try:
            await asyncio.wait_for(asyncio.shield(committed), self.write_timeout * 2)
        except TimeoutError as error:
            raise LogUnavailable(f"Kafka at {self.bootstrap}: no commit within {self.write_timeout}s") from error
        return AppendResult(appended=len(records), duplicates=len(events) - len(records))

    async def _commit_rounds(self) -> None:
        """Commit what is pending, one transaction per round, until nothing is."""
        while self._pending:
            group, self._pending = self._pending, []
            records = [record for pending in group for record in pending.records]
            try:
                await self._commit(records)
            except Exception as error:
                if isinstance(error, CommitUnanswered) and self.event_ids is not None:
                    # Before anyone hears the 503: a retry must find these ids and ask the log.
                    await self.event_ids.remember_uncertain({k: v for p in group for k, v in p.fingerprints.items()},
                                                            error.anchor.encode())
                for pending in group:
                    if not pending.committed.done():
                        pending.committed.set_exception(error)
                continue
            if self.event_ids is not None:
                await self.event_ids.remember({k: v for p in group for k, v in p.fingerprints.items()})
            for pending in group:
                if not pending.committed.done():
                    pending.committed.set_result(None)

    async def _commit(self, records: list[tuple[str, bytes, bytes]]) -> None:
        progress = Attempt()
        async with self._producer_lock:
            attempt = asyncio.ensure_future(self._transaction(records, progress))
            done, _ = await asyncio.wait({attempt}, timeout=self.write_timeout)
            error = attempt.exception() if done else TimeoutError(f"no commit within {self.write_timeout}s")
            if error is None:
                return
            # Answer now; abort the transaction and drop the producer in the background (with the
            # broker gone, aborting can itself take as long as a request timeout).
            attempt.cancel()
            producer, self._producer = self._producer, None
            cleanup = asyncio.ensure_future(self._clean_up(attempt, producer))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
        raise progress.unanswered(f"Kafka at {self.bootstrap}: {type(error).__name__}: {error}") from error

    async def _without_known(self, events: Sequence[MovieAugurEvent]) -> tuple[list[MovieAugurEvent], dict[str, str]]:
        """The events not yet taken (by the index, within its horizon, and earlier in the batch),
        and the fingerprints to remember; EventIdConflict for an id taken by other content."""
        known: dict[str, str] = {}
        if self.event_ids is not None:
            known = await self.event_ids.lookup([e.event_id for e in events])
            if any(parse_uncertain(value) for value in known.values()):  # an earlier commit went unanswered
                known, learned = await settle_uncertain(known, self.bootstrap, self.write_timeout)
                await self.event_ids.remember(learned)
        fresh: list[MovieAugurEvent] = []
        taken: dict[str, str] = {}
        for event in events:
            fingerprint = event.fingerprint
            earlier = known.get(event.event_id) or taken.get(event.event_id)
            if earlier is not None:
                if earlier != fingerprint:
                    raise EventIdConflict(event.event_id)
                continue
            taken[event.event_id] = fingerprint
            fresh.append(event)
        return fresh, taken

    async def _clean_up(self, attempt: asyncio.Future, producer: AIOKafkaProducer | None) -> None:
        try:
            await attempt
        except BaseException:
            pass
        if producer is not None:
            await _quietly_stop(producer)

    async def _transaction(self, records: list[tuple[str, bytes, bytes]], progress: Attempt) -> None:
        producer = await self._ready_producer()
        async with producer.transaction():
            first = await send_batched(producer, records)
            progress.anchor = Anchor(first.topic, first.partition, first.offset)
            progress.committing = True  # leaving the block sends the commit: from here on, uncertain

    async def _discard_producer(self) -> None:
        """After a failure the transactional producer may be in an error state: start afresh."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)

    # -- reads -----------------------------------------------------------------------------------

    async def _consumer(self, stream: str) -> AIOKafkaConsumer:
        consumer = self._consumers.get(stream)
        if consumer is not None:
            return consumer
        async with self._creating[stream]:
            return self._consumers.get(stream) or await self._new_consumer(stream)

    async def _new_consumer(self, stream: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=self.settings.kafka_fetch_mb * 1024 * 1024,
            fetch_max_wait_ms=200,
        )
        try:
            await consumer.start()
            partitions = await self._all_partitions(stream, consumer)
        except BaseException:
            await _quietly_stop(consumer)
            raise
        if self.group:
            consumer.subscribe([self.topic(stream)], listener=_LogAssignment(self.group, stream))
        else:
            consumer.assign([TopicPartition(self.topic(stream), p) for p in partitions])
        self._consumers[stream] = consumer
        return consumer

    async def partitions(self, stream: str) -> list[int]:
        """Every partition of the stream, or, in a group, the ones currently assigned to us."""
        consumer = await self._consumer(stream)
        if self.group:
            return sorted(tp.partition for tp in consumer.assignment())
        return await self._all_partitions(stream, consumer)

    async def _all_partitions(self, stream: str, consumer: AIOKafkaConsumer | None = None) -> list[int]:
        if stream not in self._partitions:
            client = consumer or await self._consumer(stream)
            found = client.partitions_for_topic(self.topic(stream))
            if not found:
                # Asked for this topic alone: a fresh client tracks no topic, and its forced update
                # then asks for every topic of the cluster (40 ms per reader with the ~450 topics
                # of a test machine's broker, 2 ms for one). Tracked already: refreshed anyway.
                metadata = client._client
                await (metadata.force_metadata_update() if self.topic(stream) in metadata._topics
                       else metadata.add_topic(self.topic(stream)))
                found = client.partitions_for_topic(self.topic(stream))
            if not found:
                raise LogUnavailable(f"topic {self.topic(stream)} does not exist; run `movieaugur stack up` or start with topics")
            self._partitions[stream] = sorted(found)
        return self._partitions[stream]

    async def end_offsets(self, stream: str) -> dict[int, int]:
        """Asked through a reader of its own: asked through the stream's reader, the request
        queued behind that reader's long poll on the same connection (200 ms when a partition it
        fetches is idle, as popularity's are during an import) and behind the read holding its
        lock, on every lag check and at the start of every replay."""
        partitions = await self._all_partitions(stream)
        reader = await self._offsets(self.topic(stream))
        ends = await reader.end_offsets([TopicPartition(self.topic(stream), p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _offsets(self, topic: str) -> AIOKafkaConsumer:
        reader = self._offsets_reader
        if reader is None:
            async with self._create_lock:
                if self._offsets_reader is None:
                    made = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                            isolation_level="read_committed")
                    try:
                        await made.start()
                    except BaseException:
                        await _quietly_stop(made)
                        raise
                    self._offsets_reader, self._offset_topics = made, set()
                reader = self._offsets_reader
        if topic not in self._offset_topics:
            # Its first ListOffsets for an untracked topic would fail, refresh the metadata and
            # retry after the 100 ms backoff; tracking the topic first costs one metadata request.
            # Bounded: with the brokers away the request below reports what is wrong.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await reader._client.add_topic(topic)
                self._offset_topics.add(topic)
        return reader

    async def read(self, stream: str, partition: int, start: int, limit: int) -> ReadResult:
        tp = TopicPartition(self.topic(stream), partition)
        async with self._consumer_locks[stream]:
            consumer = await self._consumer(stream)
            if tp not in consumer.assignment():  # revoked by a rebalance since the caller asked
                return ReadResult([], start)
            # Point the fetcher at `start` first: after a rebalance it prefetches from the group's
            # (absent) committed offset, and while those records sit in its buffer it fetches the
            # partition no more, so the end it last saw would never move past `start` again.
            if await _position(consumer, tp) != start:
                consumer.seek(tp, start)
            # Nothing to read at or past the partition's end: say so now rather than wait out the
            # fetch timeout (a projector reads several partitions per step, often idle ones). The
            # end is the one the background fetcher last saw (at most one fetch round old); asking
            # the broker would queue behind the fetcher's long poll on the same connection.
            end = consumer.last_stable_offset(tp)
            if end is None:  # not fetched yet
                end = (await (await self._offsets(tp.topic)).end_offsets([tp]))[tp]
            if start >= end:
                return ReadResult([], start)
            fetched = await consumer.getmany(tp, timeout_ms=200, max_records=limit)
            records = fetched.get(tp, [])
            next_offset = await _position(consumer, tp)
        events = [
            LoggedEvent(Position(stream, partition, record.offset), self.codec.decode(record.value))
            for record in records
        ]
        if events:
            next_offset = max(next_offset, events[-1].position.offset + 1)
        return ReadResult(events, max(next_offset, start))

    async def renew_readers(self) -> None:
        """Stop every reader; the next read makes a new consumer (in a group: it joins anew).

        Not the end-offsets reader: it never fetches (what stalled for good was a fetching group
        reader), and it is used without a lock, so stopping it could strand a call in flight."""
        for stream in STREAMS:
            async with self._consumer_locks[stream]:
                consumer = self._consumers.pop(stream, None)
                if consumer is not None:
                    await _quietly_stop(consumer)
        self._partitions.clear()

    async def wait_for_events(self, streams: Sequence[str], timeout: float) -> None:
        # The reads above already long-poll the broker (fetch_max_wait_ms); a short pause suffices.
        await asyncio.sleep(min(timeout, 0.05))

    async def close(self) -> None:
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer
        if self.event_ids is not None:
            await self.event_ids.close()
        await self._discard_producer()
        for cleanup in list(self._cleanups):
            await cleanup
        consumers, self._consumers = self._consumers, {}
        for consumer in consumers.values():
            await _quietly_stop(consumer)
        reader, self._offsets_reader = self._offsets_reader, None
        if reader is not None:
            await _quietly_stop(reader)


async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    try:
        async with asyncio.timeout(POSITION_WAIT_SECONDS):
            return await consumer.position(tp)
    except TimeoutError:
        raise LogUnavailable(f"{tp.topic}[{tp.partition}]: the reader learnt no position within "
                             f"{POSITION_WAIT_SECONDS:.0f}s; is the broker reachable? A projector renews "
                             "a reader that stays stuck (`movieaugur status`)") from None


@dataclass
class _Pending:
    """One append waiting for the next group commit."""

    records: list[tuple[str, bytes, bytes]]
    fingerprints: dict[str, str]
    committed: asyncio.Future[None]


class _LogAssignment(ConsumerRebalanceListener):
    """Say which partitions this worker follows: the way to see a group scale."""

    def __init__(self, group: str, stream: str):
        self.group, self.stream = group, stream

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            log.info("%s: %s partitions revoked: %s", self.group, self.stream, sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s: %s partitions assigned: %s", self.group, self.stream, sorted(tp.partition for tp in assigned))


async def _quietly_stop(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    try:
        await asyncio.wait_for(client.stop(), 10)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task is being cancelled: not an error of the client's to swallow
        # aiokafka's fetcher, closing, cancels its fetch tasks and awaits them: one that sat in a
        # retry back-off (a broker down) raises CancelledError into stop()'s caller. Renewing the
        # readers during a broker outage let it end the whole projector process (the fault tests).
        # stop() ended there, before cancelling the other fetches and closing its connections.
        log.debug("ignored a cancelled fetch while stopping a Kafka client; closing the rest")
        for task in list(getattr(getattr(client, "_fetcher", None), "_pending_tasks", ())):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client._client.close(), 10)
    except Exception as error:
        log.debug("ignored error while stopping a Kafka client: %r", error)


def _has_lz4() -> bool:
    return importlib.util.find_spec("lz4") is not None
