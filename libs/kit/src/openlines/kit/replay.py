"""Batched replay: rebuild a read model from the beginning (or a timestamp) of its topics.

The read side is one aiokafka consumer with manual assignment that reads up to the end offsets
seen at start. Records are decoded as fetched (`codec.BulkDecoder`), deduplicated by event_id,
gathered into batches of `batch_size` (a fetch brings a few hundred), and each batch handed to
the projection's `apply_batch` (which should use COPY or pipelined inserts) and recorded in the
inbox with COPY, all in one transaction. When a `group` is given, its offsets are committed at
the end so a live consumer of that group carries on exactly where the replay stopped.

Replay stays on raw aiokafka, not a FastStream subscriber: it assigns partitions by hand, seeks
to a timestamp, stops at the end offsets seen at start and commits for another group, none of
which a subscriber does; and it reads batches of thousands, where FastStream's batch parser
would turn every record's headers into a dict that replay never reads.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import BulkDecoder, DecodeError
from openlines.events.envelope import Envelope
from openlines.kit.log import get_logger
from openlines.kit.topics import TopicNames

log = get_logger(__name__)

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")

BatchHandler = Callable[[AsyncConnection, Sequence[Envelope]], Awaitable[None]]
Positions = dict[tuple[str, int], int]
"""Next offset to read, by (physical topic, partition)."""


@dataclass(frozen=True)
class ReplayProgress:
    """What a progress display needs after each fetched batch."""

    done: int
    """Records read so far."""
    total: int
    """Records between the start and the end offsets seen at start."""
    lag: int
    """Records between the reader and the live end of the topics (it moves while live
    writers go on)."""


@dataclass
class ReplayStats:
    events: int = 0
    duplicates: int = 0
    undecodable: int = 0
    seconds: float = 0.0
    # Where the time goes: broker fetch, JSON + pydantic decode, projection writes, inbox COPY
    # and commit. Fetch/decode overlap with apply/commit, so the phases add up to more than
    # the wall time.
    phases: dict[str, float] = field(
        default_factory=lambda: {"fetch": 0.0, "decode": 0.0, "apply": 0.0, "commit": 0.0}
    )
    positions: Positions = field(default_factory=dict)
    """Where each partition stopped: a later catch-up replay starts there."""

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
    names: TopicNames | None = None,
    only: Collection[tuple[str, int]] | None = None,
    start: Positions | None = None,
    progress: Callable[[ReplayProgress], None] | None = None,
    record_inbox: bool = True,
) -> ReplayStats:
    """Replay the LOGICAL `topics` (mapped to physical names by `names`) into `apply_batch`.

    `only` limits the replay to these (physical topic, partition) pairs: a share of the work
    in a parallel replay. `start` continues where an earlier replay stopped (its
    `stats.positions`) and wins over `since`. `progress` is called after every fetch.
    `record_inbox=False` leaves the inbox alone (a rebuild into another schema, whose events
    no live consumer must skip).
    """
    if not _PLAIN_NAME.match(consumer_name):
        raise ValueError(f"consumer name must match {_PLAIN_NAME.pattern}: {consumer_name!r}")
    stats = ReplayStats()
    started = time.perf_counter()
    consumer = replay_consumer(bootstrap, batch_size=batch_size, group=group)
    await consumer.start()
    gc_thresholds = gc.get_threshold()
    # Decoding allocates many small, acyclic objects; default thresholds make the cyclic GC
    # rescan the young heap thousands of times per replay (measured: 2-3x slower decode).
    gc.set_threshold(100_000, 50, 100)
    try:
        names = names or TopicNames()
        partitions = [
            TopicPartition(topic, p)
            for topic, p in await partitions_of(consumer, topics, names)
            if only is None or (topic, p) in only
        ]
        consumer.assign(partitions)
        await _seek_start(consumer, partitions, since, start)
        first = {tp: await consumer.position(tp) for tp in partitions}
        ends = await consumer.end_offsets(partitions)
        total = sum(max(0, ends[tp] - first[tp]) for tp in partitions)
        done = 0
        seen: set[int] = set()  # ints, not UUIDs: untracked by the cyclic GC
        # Two stages overlap: this loop fetches and decodes (our CPU) while the writer task
        # streams the previous batch into Postgres (mostly the server's CPU).
        queue: asyncio.Queue[list[Envelope] | None] = asyncio.Queue(maxsize=2)
        held: list[Envelope] = []
        decoders: dict[str, BulkDecoder] = {}
        writer = asyncio.create_task(
            _write_batches(
                engine, queue, consumer_name if record_inbox else None, apply_batch, stats
            )
        )
        try:
            while pending := await unfinished(consumer, partitions):
                t0 = time.perf_counter()
                batch = await consumer.getmany(*pending, timeout_ms=500, max_records=batch_size)
                t1 = time.perf_counter()
                if progress is not None:
                    done += sum(len(records) for records in batch.values())
                    lag = await _lag(consumer, partitions)
                    # The end moves: live writers go on, and Tansu's ListOffsets can trail
                    # the high watermark that fetches report (see `unfinished`).
                    total = max(total, done + lag)
                    progress(ReplayProgress(done, total, lag))
                envelopes: list[Envelope] = []
                for tp, records in batch.items():
                    decode = decoders.get(tp.topic)
                    if decode is None:
                        decode = decoders[tp.topic] = BulkDecoder(names.logical(tp.topic))
                    for rec in records:
                        try:
                            env = decode(rec.value, rec.headers)
                        except DecodeError:
                            stats.undecodable += 1
                            continue
                        if env.event_id.int in seen:
                            stats.duplicates += 1
                            continue
                        seen.add(env.event_id.int)
                        envelopes.append(env)
                stats.phases["fetch"] += t1 - t0
                stats.phases["decode"] += time.perf_counter() - t1
                # Fetches return a few hundred records each; the writer gets batches of
                # `batch_size` (a batch's fixed cost, a transaction and a few statements,
                # is then paid once per thousands of events, not per fetch).
                held.extend(envelopes)
                if len(held) >= batch_size:
                    await queue.put(held)
                    held = []
                if writer.done():
                    break  # it failed: surface its error below
            if held and not writer.done():
                await queue.put(held)
        finally:
            if not writer.done():
                await queue.put(None)
            await writer
        stats.positions = {
            (tp.topic, tp.partition): await consumer.position(tp) for tp in partitions
        }
        if group:
            await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        gc.set_threshold(*gc_thresholds)
        await consumer.stop()
    stats.seconds = time.perf_counter() - started
    log.info(
        "replay finished",
        consumer=consumer_name,
        events=stats.events,
        rate=round(stats.rate),
        duplicates=stats.duplicates,
        undecodable=stats.undecodable,
    )
    return stats


def replay_consumer(
    bootstrap: str, *, batch_size: int = 5000, group: str | None = None
) -> AIOKafkaConsumer:
    """A consumer tuned for reading history in bulk (assign partitions to it yourself)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        max_poll_records=batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        # A fetch that finds nothing yet (a partition drained before the others) is held by
        # the broker this long; aiokafka's 500 ms default stalled the tail of each replay
        # (measured: 36-41k -> 42-47k events/s in one process, 43-46k -> 53-54k with two).
        fetch_max_wait_ms=50,
    )


async def unfinished(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> list[TopicPartition]:
    """The partitions whose position has not reached the end yet.

    The end is the high watermark that fetch responses report. ListOffsets alone is not
    trusted: Tansu's "latest" offset can trail acked writes for good.
    """
    return [
        tp
        for tp in partitions
        if (high := consumer.highwater(tp)) is None or await consumer.position(tp) < high
    ]


async def partitions_of(
    consumer: AIOKafkaConsumer, topics: Sequence[str], names: TopicNames
) -> list[tuple[str, int]]:
    """(physical topic, partition) of every partition of the LOGICAL `topics`, in order."""
    await consumer.topics()  # loads cluster metadata for topics we do not subscribe to
    return [
        (topic, p)
        for topic in (names.physical(t) for t in topics)
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]


async def _lag(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> int:
    lag = 0
    for tp in partitions:
        high = consumer.highwater(tp)
        if high is not None:
            lag += max(0, high - await consumer.position(tp))
    return lag


async def _write_batches(
    engine: AsyncEngine,
    queue: asyncio.Queue[list[Envelope] | None],
    consumer_name: str | None,
    apply_batch: BatchHandler,
    stats: ReplayStats,
) -> None:
    while (envelopes := await queue.get()) is not None:
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            await apply_batch(conn, envelopes)
            t1 = time.perf_counter()
            if consumer_name is not None:
                await _record_applied(conn, consumer_name, envelopes)
        stats.phases["apply"] += t1 - t0
        stats.phases["commit"] += time.perf_counter() - t1
        stats.events += len(envelopes)


async def _seek_start(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    since: datetime | None,
    start: Positions | None = None,
) -> None:
    if start is not None:
        fresh = [tp for tp in partitions if (tp.topic, tp.partition) not in start]
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        for tp in partitions:
            if (tp.topic, tp.partition) in start:
                consumer.seek(tp, start[(tp.topic, tp.partition)])
        return
    if since is None:
        await consumer.seek_to_beginning(*partitions)
        return
    found = await consumer.offsets_for_times(
        {tp: int(since.timestamp() * 1000) for tp in partitions}
    )
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
    # One pre-formatted text buffer: per-row write_row calls cost more CPU than the COPY itself.
    # Consumer names are plain identifiers (checked below), so no COPY escaping is needed.
    prefix = f"{consumer_name}\t"
    data = "".join(f"{prefix}{env.event_id}\n" for env in envelopes)
    async with pg.cursor().copy("COPY inbox (consumer, event_id) FROM STDIN") as copy:
        await copy.write(data.encode())
