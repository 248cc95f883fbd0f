"""Batched replay: rebuild a read model from the beginning (or a timestamp) of its topics.

The read side is one aiokafka consumer with manual assignment that reads up to the end offsets
seen at start. Each batch is decoded, deduplicated by event_id, handed to the projection's
`apply_batch` (which should use COPY or pipelined inserts) and recorded in the inbox with COPY,
all in one transaction. When a `group` is given, its offsets are committed at the end so a live
consumer of that group carries on exactly where the replay stopped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import DecodeError, decode
from openlines.events.envelope import Envelope
from openlines.kit.log import get_logger

log = get_logger(__name__)

BatchHandler = Callable[[AsyncConnection, Sequence[Envelope]], Awaitable[None]]


@dataclass
class ReplayStats:
    events: int = 0
    duplicates: int = 0
    undecodable: int = 0
    seconds: float = 0.0
    # Where the time goes: broker fetch, JSON + pydantic decode, projection writes, commit.
    phases: dict[str, float] = field(
        default_factory=lambda: {"fetch": 0.0, "decode": 0.0, "apply": 0.0, "commit": 0.0}
    )

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def replay(
    *,
    engine: AsyncEngine,
    bootstrap: str,
    topics: Sequence[str],
    consumer_name: str,
    apply_batch: BatchHandler,
    since: datetime | None = None,
    batch_size: int = 5000,
    group: str | None = None,
) -> ReplayStats:
    stats = ReplayStats()
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        max_poll_records=batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()  # loads cluster metadata for topics we do not subscribe to
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await _seek_start(consumer, partitions, since)
        remaining = {tp for tp in partitions if await consumer.position(tp) < end[tp]}
        seen: set[UUID] = set()
        while remaining:
            t0 = time.perf_counter()
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=batch_size)
            t1 = time.perf_counter()
            envelopes: list[Envelope] = []
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset >= end[tp]:
                        continue
                    try:
                        env = decode(rec.value, rec.headers, topic=rec.topic)
                    except DecodeError:
                        stats.undecodable += 1
                        continue
                    if env.event_id in seen:
                        stats.duplicates += 1
                        continue
                    seen.add(env.event_id)
                    envelopes.append(env)
                if records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
            t2 = time.perf_counter()
            if envelopes:
                async with engine.begin() as conn:
                    await apply_batch(conn, envelopes)
                    t3 = time.perf_counter()
                    await _record_applied(conn, consumer_name, envelopes)
                t4 = time.perf_counter()
                stats.phases["apply"] += t3 - t2
                stats.phases["commit"] += t4 - t3
            stats.phases["fetch"] += t1 - t0
            stats.phases["decode"] += t2 - t1
            stats.events += len(envelopes)
        if group:
            await consumer.commit({tp: end[tp] for tp in partitions})
    finally:
        await consumer.stop()
    stats.seconds = time.perf_counter() - started
    log.info("replay finished", consumer=consumer_name, events=stats.events,
             rate=round(stats.rate), duplicates=stats.duplicates, undecodable=stats.undecodable)
    return stats


async def _seek_start(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: datetime | None
) -> None:
    if since is None:
        await consumer.seek_to_beginning(*partitions)
        return
    found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        hit = found.get(tp)
        consumer.seek(tp, hit.offset if hit is not None else ends[tp])


async def _record_applied(
    conn: AsyncConnection, consumer_name: str, envelopes: Sequence[Envelope]
) -> None:
    """COPY the applied ids into the inbox: a live consumer resuming later skips them."""
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    async with pg.cursor().copy("COPY inbox (consumer, event_id) FROM STDIN") as copy:
        for env in envelopes:
            await copy.write_row((consumer_name, env.event_id))
