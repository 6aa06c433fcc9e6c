"""A retry after a commit that went unanswered, against the real broker and Redis.

The fault tests found it: a broker died while the coordinator wrote a commit, the producer's commit
request timed out, the client got a 503 and sent the batch again, and the log held it twice. Now the
batch's ids are marked uncertain with their transaction's first record, and the retry asks the log.
These tests set up each outcome with a real transaction (committed, aborted, still open) and the
mark the command service leaves after an unanswered commit, then retry as a client would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from domain.events import INTERACTIONS, InteractionRecorded
from domain.ports import LogUnavailable
from infra.local.testing import ensure_stack
from movieaugur.adapters.event_ids import RedisEventIds
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.kafka_outcomes import Anchor
from movieaugur.stack_settings import stack_settings

pytestmark = pytest.mark.stack


def _events(tag: str, count: int = 20) -> list[InteractionRecorded]:
    return [InteractionRecorded.new(event_id=f"{tag}-{i}", user_id=f"u{i % 3}", item_id=f"m{i}", item_type="movie")
            for i in range(count)]


@pytest.fixture
async def log() -> AsyncIterator[KafkaEventLog]:
    settings = stack_settings(ensure_stack()).model_copy(update={"topic_prefix": f"o{uuid.uuid4().hex[:8]}.",
                                                                 "kafka_write_timeout_seconds": 3.0})
    event_ids = RedisEventIds(settings.redis_url, settings.topic_prefix, 600)
    log = KafkaEventLog(settings, event_ids=event_ids)
    await log.ensure_topics()
    yield log
    keys = [key async for key in event_ids.redis.scan_iter(match=f"{settings.topic_prefix}*")]
    if keys:
        await event_ids.redis.delete(*keys)
    await log.close()


async def _logged(log: KafkaEventLog, tag: str, expect: int = 0) -> Counter:
    """This test's event ids in the log as read_committed readers see them, with their counts. With
    `expect`, scans again (up to 30 s) until that many distinct ids show: a commit is acknowledged
    once the coordinator decided it, and its markers reach the partitions a moment later."""
    deadline = time.monotonic() + 30
    while True:
        logged = Counter([e.event.event_id async for e in log.scan(INTERACTIONS) if e.event.event_id.startswith(tag)])
        if len(logged) >= expect or time.monotonic() > deadline:
            return logged
        await asyncio.sleep(0.2)


async def _transaction(log: KafkaEventLog, events: list[InteractionRecorded], end: str) -> tuple[Anchor, AIOKafkaProducer]:
    """Write `events` in one transaction of a producer of our own and end it as `end` says
    ("commit", "abort", or "open": left running). Returns its first record and the producer."""
    producer = AIOKafkaProducer(bootstrap_servers=log.bootstrap, transactional_id=f"outcome-{uuid.uuid4().hex}",
                                enable_idempotence=True, acks="all", transaction_timeout_ms=60_000)
    await producer.start()
    await producer.begin_transaction()
    futures = [await producer.send(log.topic(e.stream), value=log.codec.encode(e), key=e.key.encode()) for e in events]
    first = (await asyncio.gather(*futures))[0]
    if end == "commit":
        await producer.commit_transaction()
    elif end == "abort":
        await producer.abort_transaction()
    return Anchor(first.topic, first.partition, first.offset), producer


async def _unanswered(log: KafkaEventLog, events: list[InteractionRecorded], end: str) -> AIOKafkaProducer:
    """The state a command service leaves when its commit of `events` went unanswered."""
    anchor, producer = await _transaction(log, events, end)
    assert log.event_ids is not None
    await log.event_ids.remember_uncertain({e.event_id: e.fingerprint for e in events}, anchor.encode())
    return producer


async def test_a_retry_of_a_commit_that_happened_is_taken_as_a_duplicate(log: KafkaEventLog) -> None:
    events = _events("committed")
    producer = await _unanswered(log, events, "commit")
    await producer.stop()
    result = await log.append(events)
    assert (result.appended, result.duplicates) == (0, len(events))
    assert set((await _logged(log, "committed", len(events))).values()) == {1}, "each event once in the log"
    again = await log.append(events)  # the outcome is now remembered: no second look at the log
    assert (again.appended, again.duplicates) == (0, len(events))


async def test_a_retry_of_a_commit_that_was_aborted_is_appended_once(log: KafkaEventLog) -> None:
    events = _events("aborted")
    producer = await _unanswered(log, events, "abort")
    await producer.stop()
    result = await log.append(events)
    assert (result.appended, result.duplicates) == (len(events), 0)
    logged = await _logged(log, "aborted", len(events))
    assert len(logged) == len(events) and set(logged.values()) == {1}, logged


async def test_a_retry_while_the_outcome_is_open_is_refused_until_it_is_known(log: KafkaEventLog) -> None:
    events = _events("open")
    producer = await _unanswered(log, events, "open")
    started = time.monotonic()
    with pytest.raises(LogUnavailable, match="no known outcome yet"):
        await log.append(events)
    assert time.monotonic() - started < 30  # answered within the write timeout's reach, not held
    assert await _logged(log, "open") == Counter()
    await producer.commit_transaction()  # the coordinator decides: committed
    await producer.stop()
    result = await log.append(events)
    assert (result.appended, result.duplicates) == (0, len(events))
    assert set((await _logged(log, "open", len(events))).values()) == {1}
