"""Batched replay: every event once, duplicates and garbage skipped, then a live consumer of
the same group carries on where the replay stopped; the parallel form splits the partitions."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.kafka.producer import create_producer
from openlines.kit.parallel_replay import ReplayJob, replay_parallel, split
from openlines.kit.replay import replay
from openlines.kit.testing.projection import EVENT_LOG_DDL, copy_into_event_log

from .helpers import Kit, catch_all, renamed


def _events(streams: int, per_stream: int) -> list[Envelope]:
    return [
        Envelope.new(renamed(v, f"s{s}"), stream_id=f"s{s}", stream_version=v + 1, producer="test")
        for v in range(per_stream)
        for s in range(streams)
    ]


async def _publish(bootstrap: str, topic: str, envelopes: list[Envelope], garbage: int = 0) -> None:
    producer = create_producer(bootstrap, client_id="replay-test")
    await producer.start()
    try:
        for env in envelopes:
            record = encode(env)
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        for i in range(garbage):
            await producer.send(topic, b"{not json", key=f"s{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _event_log(engine: AsyncEngine) -> dict[str, list[int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT stream_id, stream_version FROM event_log ORDER BY 1, 2")
        )
        log: dict[str, list[int]] = {}
        for stream_id, version in rows:
            log.setdefault(stream_id, []).append(version)
        return log


async def _inbox_count(engine: AsyncEngine, consumer: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM inbox WHERE consumer = :c"), {"c": consumer}
        )
        return int(count or 0)


async def _history(
    kit: Kit,
    *,
    partitions: int,
    streams: int,
    per_stream: int,
    twice: int,
    garbage: int,
) -> str:
    """An empty event log and a topic holding a history, `twice` events of it republished
    (as the relay does after a crash) and `garbage` undecodable records; returns the topic."""
    async with kit.engine.begin() as conn:
        await conn.execute(text(EVENT_LOG_DDL))
    topic = await kit.new_topic(partitions=partitions)
    history = _events(streams=streams, per_stream=per_stream)
    await _publish(kit.bootstrap, topic, history + history[:twice], garbage=garbage)
    return topic


async def test_replay_applies_each_event_once_then_the_live_consumer_carries_on(kit: Kit) -> None:
    topic = await _history(kit, partitions=3, streams=12, per_stream=25, twice=30, garbage=1)

    name = f"log-{kit.schema}"
    stats = await replay(
        engine=kit.engine,
        bootstrap=kit.bootstrap,
        topics=[topic],
        consumer_name=name,
        apply_batch=copy_into_event_log,
        batch_size=64,  # several batches, so the writer stage really overlaps the reader
        group=name,
    )
    assert (stats.events, stats.duplicates, stats.undecodable) == (300, 30, 1)
    log = await _event_log(kit.engine)
    assert log == {f"s{s}": list(range(1, 26)) for s in range(12)}
    assert await _inbox_count(kit.engine, name) == 300

    # A live consumer of the same group and inbox: nothing of the history again, new ones yes.
    applied: list[Envelope] = []

    async def live_handler(conn: AsyncConnection, env: Envelope) -> None:
        applied.append(env)
        await copy_into_event_log(conn, [env])

    runner = kit.runner(catch_all(name, topic, live_handler, batch_size=50))
    fresh = [Envelope.new(renamed(25, "s0"), stream_id="s0", stream_version=26, producer="test")]
    await _publish(kit.bootstrap, topic, fresh)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with asyncio.timeout(30):
            while runner.status.applied < 1 or runner.status.lag:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert [env.event_id for env in applied] == [fresh[0].event_id]
    assert (await _event_log(kit.engine))["s0"] == list(range(1, 27))


def test_partitions_are_dealt_into_non_empty_shares() -> None:
    parts = [("t", p) for p in range(5)]
    assert split(parts, 2) == [[("t", 0), ("t", 2), ("t", 4)], [("t", 1), ("t", 3)]]
    assert split(parts[:1], 4) == [[("t", 0)]]
    assert split([], 3) == []


async def test_parallel_replay_gives_each_partition_to_one_worker(kit: Kit) -> None:
    topic = await _history(kit, partitions=4, streams=20, per_stream=30, twice=40, garbage=2)

    name = f"plog-{kit.schema}"
    job = ReplayJob(
        database_url=kit.database_url,
        schema=kit.schema,
        bootstrap=kit.bootstrap,
        topics=(topic,),
        consumer_name=name,
        apply_batch=copy_into_event_log,
        batch_size=100,
    )
    stats = await replay_parallel(job, workers=2)
    assert (stats.events, stats.duplicates, stats.undecodable) == (600, 40, 2)
    assert await _event_log(kit.engine) == {f"s{s}": list(range(1, 31)) for s in range(20)}
    assert await _inbox_count(kit.engine, name) == 600
