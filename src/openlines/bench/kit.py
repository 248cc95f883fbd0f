"""`openlines bench kit`: relay, live projection and batched replay rates, each beside a
baseline measured in the same run (raw aiokafka produce; Postgres COPY into a similar table)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.bench.infra import Infra
from openlines.events.catalog import MessageReceived
from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.events.topics import INBOUND
from openlines.kit.consumer import ConsumerRunner, Subscription
from openlines.kit.db.engine import create_engine, libpq_dsn
from openlines.kit.db.migrate import migrate
from openlines.kit.eventstore import EventStore
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.producer import create_producer
from openlines.kit.parallel_replay import ReplayJob, replay_parallel, start_pool
from openlines.kit.relay import OutboxRelay
from openlines.kit.replay import replay, replay_consumer, unfinished
from openlines.kit.topics import TopicNames


@dataclass
class Result:
    name: str
    rate: float
    baseline_name: str
    baseline_rate: float
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate if self.baseline_rate else 0.0


def sample_payload(i: int) -> MessageReceived:
    return MessageReceived.model_validate(
        {
            "channel_id": "tg-bench",
            "channel_type": "telegram",
            "conversation_key": f"tg-bench:{i % 1000}",
            "external_chat_id": str(i % 1000),
            "external_user_id": str(i % 1000),
            "external_message_id": str(i),
            "customer": {"name": "Bench Customer", "external_id": str(i % 1000)},
            "text": "hello, I would like to know where my order is",
            "attachments": [],
            "sent_at": "2026-11-21T10:00:00Z",
        }
    )


def sample_envelopes(n: int) -> list[Envelope]:
    return [
        Envelope.new(
            sample_payload(i),
            stream_id=f"tg-bench:{i % 1000}",
            stream_version=i // 1000 + 1,
            producer="bench",
        )
        for i in range(n)
    ]


PROJECTION_DDL = (
    "CREATE TABLE {name} (event_id uuid PRIMARY KEY, stream_id text NOT NULL, "
    "customer text NOT NULL, body text, at timestamptz NOT NULL)"
)


def namespace() -> TopicNames:
    # Real (logical) topic names under a per-run prefix, as services and tests use them.
    return TopicNames(f"bench{uuid.uuid4().hex[:6]}.")


async def bench_relay(infra: Infra, engine: AsyncEngine, schema: str, n: int) -> Result:
    names = namespace()
    raw_topic = names.physical("raw")
    await ensure_topics(infra.kafka_bootstrap, [names.physical(INBOUND), raw_topic], partitions=3)
    envelopes = sample_envelopes(n)
    records = [encode(e) for e in envelopes]

    producer = create_producer(infra.kafka_bootstrap, client_id="bench-raw", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    futures = [
        await producer.send(raw_topic, r.value, key=r.key, headers=r.headers) for r in records
    ]
    await asyncio.gather(*futures)
    raw_rate = n / (time.perf_counter() - started)

    store = EventStore(schema, producer="bench", topics=names)
    async with engine.begin() as conn:
        for i in range(0, n, 1000):
            chunk = envelopes[i : i + 1000]
            await store.outbox.enqueue(conn, INBOUND, chunk)
    relay = OutboxRelay(
        engine, producer, schema=schema, dsn=libpq_dsn(infra.database_url), batch_size=1000
    )
    started = time.perf_counter()
    while await relay.publish_pending():
        pass
    rate = n / (time.perf_counter() - started)
    await producer.stop()
    return Result(
        "relay publish (outbox -> Kafka)",
        rate,
        "raw aiokafka produce",
        raw_rate,
        {"per round": "SELECT 1000 rows, send, await acks, DELETE"},
    )


async def _copy_baseline(engine: AsyncEngine, envelopes: Sequence[Envelope]) -> float:
    async with engine.begin() as conn:
        await conn.execute(text(PROJECTION_DDL.format(name="copy_baseline")))
    started = time.perf_counter()
    async with engine.begin() as conn:
        await copy_rows(conn, "copy_baseline", envelopes)
    return len(envelopes) / (time.perf_counter() - started)


async def copy_rows(conn: AsyncConnection, table: str, envelopes: Sequence[Envelope]) -> None:
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    async with pg.cursor().copy(
        f"COPY {table} (event_id, stream_id, customer, body, at) FROM STDIN"
    ) as copy:
        for env in envelopes:
            p = env.payload
            assert isinstance(p, MessageReceived)
            await copy.write_row(
                (env.event_id, env.stream_id, p.customer.name, p.text, env.occurred_at)
            )


async def _publish(infra: Infra, topic: str, envelopes: Sequence[Envelope]) -> None:
    producer = create_producer(infra.kafka_bootstrap, client_id="bench-fill", linger_ms=5)
    await producer.start()
    futures = []
    for env in envelopes:
        r = encode(env)
        futures.append(await producer.send(topic, r.value, key=r.key, headers=r.headers))
    await asyncio.gather(*futures)
    await producer.stop()


async def bench_projections(
    infra: Infra, engine: AsyncEngine, n_live: int, n_replay: int
) -> list[Result]:
    names = namespace()
    topic = names.physical(INBOUND)
    # Two partitions per replay worker, so that the parallel replay's shares are even (the
    # suite's own topics have 3, which two workers split 2:1).
    partitions = 2 * replay_workers()
    await ensure_topics(infra.kafka_bootstrap, [topic, f"{topic}.dlq"], partitions=partitions)
    envelopes = sample_envelopes(n_replay)
    await _publish(infra, topic, envelopes)
    copy_rate = await _copy_baseline(engine, envelopes)

    async with engine.begin() as conn:
        await conn.execute(text(PROJECTION_DDL.format(name="live_proj")))
        await conn.execute(text(PROJECTION_DDL.format(name="replay_proj")))

    async def apply_live(conn: AsyncConnection, env: Envelope) -> None:
        p = env.payload
        assert isinstance(p, MessageReceived)
        await conn.execute(
            text("INSERT INTO live_proj VALUES (:id, :s, :c, :b, :at)"),
            {
                "id": env.event_id,
                "s": env.stream_id,
                "c": p.customer.name,
                "b": p.text,
                "at": env.occurred_at,
            },
        )

    dlq = create_producer(infra.kafka_bootstrap, client_id="bench-dlq")
    await dlq.start()
    live: Subscription = Subscription(
        f"bench-live-{uuid.uuid4().hex[:6]}", [INBOUND], batch_size=200
    )
    live.on(MessageReceived)(apply_live)
    runner = ConsumerRunner(
        live,
        engine=engine,
        bootstrap=infra.kafka_bootstrap,
        dlq_producer=dlq,
        topics=names,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    while not runner.status.applied:
        await asyncio.sleep(0.01)
    started, base = time.perf_counter(), runner.status.applied
    while runner.status.applied < n_live:
        await asyncio.sleep(0.01)
    live_rate = (runner.status.applied - base) / (time.perf_counter() - started)
    stop.set()
    await task
    await dlq.stop()

    stats = await replay(
        engine=engine,
        bootstrap=infra.kafka_bootstrap,
        topics=[INBOUND],
        consumer_name="bench-replay",
        apply_batch=apply_replay,
        batch_size=5000,
        names=names,
    )
    total = sum(stats.phases.values()) or 1.0
    phases = {k: f"{v:.2f}s ({v / total:.0%})" for k, v in stats.phases.items()}
    parallel = await _bench_parallel_replay(infra, engine, names, copy_rate)
    fetch_rate = await _raw_fetch_rate(infra, topic)
    return [
        Result(
            "live projection apply (batches of 200)",
            live_rate,
            "Postgres COPY, same rows",
            copy_rate,
            {"per batch": "1 tx: inbox claim + 1 INSERT per event, then offset commit"},
        ),
        Result(
            "batched replay (COPY + inbox COPY)",
            stats.rate,
            "Postgres COPY, same rows",
            copy_rate,
            phases,
        ),
        parallel,
        Result(
            "raw aiokafka fetch of the same records (no decode, no write)",
            fetch_rate,
            "Postgres COPY, same rows",
            copy_rate,
            {"ceiling": "what any replay on aiokafka could reach before doing any work"},
        ),
    ]


async def _raw_fetch_rate(infra: Infra, topic: str) -> float:
    """Records/s that aiokafka alone fetches from this broker, with replay's settings."""
    consumer = replay_consumer(infra.kafka_bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started, count = time.perf_counter(), 0
        while pending := await unfinished(consumer, partitions):
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            count += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def apply_replay(conn: AsyncConnection, batch: Sequence[Envelope]) -> None:
    await copy_rows(conn, "replay_proj", batch)


async def apply_parallel_replay(conn: AsyncConnection, batch: Sequence[Envelope]) -> None:
    # Module level: replay workers are processes and import their handler by reference.
    await copy_rows(conn, "parallel_proj", batch)


def replay_workers() -> int:
    return max(2, os.cpu_count() or 2)


async def _bench_parallel_replay(
    infra: Infra, engine: AsyncEngine, names: TopicNames, copy_rate: float
) -> Result:
    workers = replay_workers()
    async with engine.begin() as conn:
        await conn.execute(text(PROJECTION_DDL.format(name="parallel_proj")))
        schema = await conn.scalar(text("SELECT current_schema()"))
    job = ReplayJob(
        database_url=infra.database_url,
        schema=str(schema),
        bootstrap=infra.kafka_bootstrap,
        topics=(INBOUND,),
        consumer_name="bench-replay-parallel",
        apply_batch=apply_parallel_replay,
        namespace=names.namespace,
    )
    started = time.perf_counter()
    pool = await asyncio.to_thread(start_pool, workers)
    startup = time.perf_counter() - started
    try:
        stats = await replay_parallel(job, workers=workers, pool=pool)
    finally:
        pool.shutdown()
    with_startup = stats.events / (stats.seconds + startup)
    return Result(
        f"partition-parallel replay ({workers} worker processes)",
        stats.rate,
        "Postgres COPY, same rows",
        copy_rate,
        {
            "workers": f"started before the clock ({startup:.1f}s); "
            f"{with_startup:,.0f} events/s counting their start-up",
        },
    )


async def run(infra: Infra, n: int = 50_000) -> list[Result]:
    schema = f"bench_{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(migrate, infra.database_url, schema)
    engine = create_engine(infra.database_url, schema)
    try:
        results = [await bench_relay(infra, engine, schema, n)]
        results += await bench_projections(infra, engine, n_live=min(n, 10_000), n_replay=n)
        return results
    finally:
        await engine.dispose()
