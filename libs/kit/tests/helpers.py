"""Shared test helpers: read a topic to its end, and a tiny event payload."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from openlines.events.catalog import DialogRenamed


def renamed(i: int, stream: str = "d") -> DialogRenamed:
    return DialogRenamed(
        dialog_id=uuid.uuid5(uuid.NAMESPACE_URL, stream), title=f"title {i}", actor_id="op"
    )


async def read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the beginning until `expected` records arrived (or the timeout passes)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            for records in batch.values():
                out.extend(records)
        # Drain a little more so duplicates past `expected` are seen too.
        batch = await consumer.getmany(timeout_ms=300)
        for records in batch.values():
            out.extend(records)
        return out
    finally:
        await consumer.stop()
