"""How many copies of each Kafka topic a cluster of a given size keeps: one rule, used by the local
stack's broker and Connect configs and by the event log when it creates MovieAugur's topics."""

from __future__ import annotations


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of `brokers`.

    Three brokers or more: three copies, two of which must have a write before it is acknowledged
    (acks=all), so one broker may be lost without losing an acknowledged event or refusing writes,
    and with two lost writes are refused rather than kept on one disk. Fewer brokers: every broker
    holds a copy and one acknowledgement suffices (a single broker keeps today's settings)."""
    factor = max(1, min(3, brokers))
    return factor, (2 if factor >= 3 else 1)
