"""Records into a Kafka transaction as record batches, not one `send()` each (see send_batched)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

_PARTITIONER = DefaultPartitioner()


async def send_batched(producer: AIOKafkaProducer, records: list[tuple[str, bytes, bytes]]) -> RecordMetadata:
    """Send the records as record batches per partition; the first batch's metadata (its first
    record: the transaction's anchor).

    Why not `send()` per record: aiokafka gives every record its own future, created and resolved
    through the event loop, which was a quarter of an import's CPU (py-spy). A batch has one. The
    partition is the one `send()` would choose for the key (the default murmur2 partitioner over
    the topic's partitions), so a key's events stay in one partition, in order: batches of one
    partition are queued one after another, and the producer is idempotent."""
    by_partition: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    partitions: dict[str, list[int]] = {}
    for topic, key, value in records:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        by_partition.setdefault((topic, _PARTITIONER(key, partitions[topic], partitions[topic])), []).append((key, value))
    futures = []
    for (topic, partition), messages in by_partition.items():
        batch = producer.create_batch()
        for key, value in messages:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte record does not fit in a Kafka batch")
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return (await asyncio.gather(*futures))[0]
