"""Whether a Kafka transaction whose commit went unanswered was committed after all.

A commit request can reach the transaction coordinator and still time out for the producer (a
broker died while the coordinator wrote the commit markers). The coordinator then finishes the
commit, but the command service had to answer before it knew, so it answered 503, and the client
sends the same events again. Taking the retry as new would put every event in the log twice; taking
it as a duplicate would lose the events if the transaction was in fact aborted. So the log marks the
batch's event ids as uncertain, with the position of the transaction's first record (its anchor),
and a retry first asks the log what became of the anchor: a read_committed reader sees the anchor
only if its transaction committed, and reads past it if it was aborted. Until the coordinator has
decided (a quorum still lost), the answer is "not known yet" and the retry gets a 503 again.

Only a commit that was sent can be uncertain: a transaction that failed before its commit request
can only end aborted (no one else can commit it), so those failures answer 503 without a mark.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from domain.ports import LogUnavailable, OutcomeUnknown
from movieaugur.adapters.event_ids import parse_uncertain


@dataclass(frozen=True)
class Anchor:
    """The first record of a transaction: every record of it shares its outcome."""

    topic: str
    partition: int
    offset: int

    def encode(self) -> str:
        return f"{self.partition}:{self.offset}:{self.topic}"

    @classmethod
    def decode(cls, text: str) -> Anchor:
        partition, offset, topic = text.split(":", 2)
        return cls(topic, int(partition), int(offset))


async def committed(bootstrap: str, anchor: Anchor, timeout: float) -> bool | None:
    """True if the anchor's transaction committed, False if it was aborted, None if the log cannot
    tell within `timeout` (the transaction is still open, or the partition unreachable).

    A short-lived consumer of its own: this is a rare path, and the log's readers follow other
    positions."""
    tp = TopicPartition(anchor.topic, anchor.partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", request_timeout_ms=max(1000, int(timeout * 1000)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        consumer.assign([tp])
        consumer.seek(tp, anchor.offset)
        while loop.time() < deadline:
            fetched = await consumer.getmany(tp, timeout_ms=200, max_records=1)
            for record in fetched.get(tp, []):
                return record.offset == anchor.offset  # the first committed record at or past it
            if await consumer.position(tp) > anchor.offset:
                return False  # read past it (aborted records and markers) with nothing to show
        return None
    except (KafkaError, OSError, TimeoutError):  # unreachable: not known yet, and the client retries
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 10)


class CommitUnanswered(OutcomeUnknown):
    """The commit request was sent and no answer came: the transaction may have committed."""

    def __init__(self, message: str, anchor: Anchor):
        super().__init__(message)
        self.anchor = anchor


@dataclass
class Attempt:
    """How far one transaction got: set by the transaction, read after it failed or timed out."""

    anchor: Anchor | None = None
    committing: bool = False

    def unanswered(self, message: str) -> LogUnavailable:
        """The error to raise for this failed attempt: uncertain only once the commit was asked."""
        if self.committing and self.anchor is not None:
            return CommitUnanswered(f"{message}; the commit may have happened: send the same events again "
                                   "(same event ids) and they will be taken once", self.anchor)
        return LogUnavailable(message)


async def settle_uncertain(known: dict[str, str], bootstrap: str, timeout: float) -> tuple[dict[str, str], dict[str, str]]:
    """The event-id index's answer `known` with each uncertain id resolved by asking the log about
    its transaction: kept as taken (its fingerprint) if it committed, dropped if it was aborted (the
    retry appends it). Also returns what was learned, for the index to remember. LogUnavailable
    (503, retry later) while the log cannot tell yet."""
    anchors = {parsed[0] for value in known.values() if (parsed := parse_uncertain(value))}
    outcomes = {anchor: await committed(bootstrap, Anchor.decode(anchor), timeout) for anchor in anchors}
    if None in outcomes.values():
        raise LogUnavailable(f"Kafka at {bootstrap}: an earlier attempt with these event ids has no known "
                             "outcome yet (its commit went unanswered); send them again shortly")
    settled: dict[str, str] = {}
    for event_id, value in known.items():
        parsed = parse_uncertain(value)
        if parsed is None:
            settled[event_id] = value
        elif outcomes[parsed[0]]:
            settled[event_id] = parsed[1]
    return settled, {i: f for i, f in settled.items() if known[i] != f}
