"""Trace context crosses the outbox and Kafka; shutdown finishes the batch in hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from multidict import CIMultiDict
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.consumer import ConsumerRunner
from openlines.kit.db.engine import libpq_dsn
from openlines.kit.eventstore import EventStore
from openlines.kit.relay import OutboxRelay
from openlines.kit.telemetry import (
    context_from_http,
    current_trace_ids,
    current_traceparent,
    setup_tracing,
    tracer,
)
from openlines.kit.testing.infra import consumer_options

from .helpers import catch_all, renamed
from .test_consumer import _effects, _make_counter, count_effect


def test_traceparent_is_what_the_w3c_propagator_writes() -> None:
    setup_tracing("kit-test")
    assert current_traceparent() is None  # no span: nothing to propagate
    with tracer().start_as_current_span("outer"), tracer().start_as_current_span("inner"):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        assert current_traceparent() == carrier["traceparent"]


def test_without_an_exporter_spans_carry_ids_but_record_nothing() -> None:
    setup_tracing("kit-test")  # no OTLP endpoint, as in the tests and `make run`
    with tracer().start_as_current_span("request") as span:
        assert not span.is_recording()  # recording costs CPU that nothing would ever read
        ids = current_trace_ids()
        traceparent = current_traceparent()
    assert ids is not None and int(ids[0], 16) != 0
    assert traceparent is not None and traceparent.startswith(f"00-{ids[0]}-{ids[1]}-")
    assert int(traceparent[-2:], 16) & 0x01 == 0  # the sampled flag says nothing was recorded


def test_http_trace_context_is_read_whatever_the_header_capitals() -> None:
    setup_tracing("kit-test")
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = CIMultiDict({"TraceParent": f"00-{trace_id}-b7ad6b7169203331-01"})
    with tracer().start_as_current_span("server", context=context_from_http(headers)):
        ids = current_trace_ids()
    assert ids is not None and ids[0] == trace_id


async def test_trace_id_travels_from_writer_through_kafka_to_consumer(
    engine: AsyncEngine,
    db_schema: str,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., Awaitable[str]],
    producer: AIOKafkaProducer,
    store: EventStore,
) -> None:
    setup_tracing("kit-test")
    topic = await new_topic(partitions=1)
    with tracer().start_as_current_span("operator request"):
        ids = current_trace_ids()
        assert ids is not None
        writer_trace = ids[0]
        async with engine.begin() as conn:
            await store.append(conn, "t1", 0, [renamed(1, "t1")], topic=topic)

    relay = OutboxRelay(engine, producer, schema=db_schema, dsn=libpq_dsn(database_url))
    assert await relay.publish_pending() == 1

    seen: list[str] = []

    async def remember_trace(conn: AsyncConnection, env: Envelope) -> None:
        ids = current_trace_ids()
        seen.append(ids[0] if ids else "none")

    runner = ConsumerRunner(
        catch_all(f"trace-{db_schema}", topic, remember_trace),
        engine=engine,
        bootstrap=kafka_bootstrap,
        dlq_producer=producer,
        consumer_options=consumer_options(kafka_bootstrap),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with asyncio.timeout(30):
            while not seen:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert seen == [writer_trace]


async def test_shutdown_finishes_the_batch_in_hand_and_commits(
    engine: AsyncEngine,
    kafka_bootstrap: str,
    new_topic: Callable[..., Awaitable[str]],
    db_schema: str,
    producer: AIOKafkaProducer,
) -> None:
    await _make_counter(engine)
    topic = await new_topic(partitions=1)
    for i in range(40):
        r = encode(Envelope.new(renamed(i, "s"), stream_id="s", stream_version=i + 1, producer="t"))
        await producer.send(topic, r.value, key=r.key)
    await producer.flush()

    stop = asyncio.Event()
    started_batch = asyncio.Event()

    async def slow(conn: AsyncConnection, env: Envelope) -> None:
        started_batch.set()
        await asyncio.sleep(0.02)  # 40 x 20 ms: the stop arrives mid-batch
        await count_effect(conn, env)

    group = f"shutdown-{db_schema}"
    runner = ConsumerRunner(
        catch_all(group, topic, slow, batch_size=40),
        engine=engine,
        bootstrap=kafka_bootstrap,
        dlq_producer=producer,
        consumer_options=consumer_options(kafka_bootstrap),
    )
    task = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(30):
        await started_batch.wait()
    stop.set()  # one record of the batch is in the handler now
    await task
    applied = runner.status.applied
    assert applied > 1  # the rest of the batch in hand was applied, not dropped
    effects = await _effects(engine)
    assert len(effects) == applied and set(effects.values()) == {1}

    # Its offsets were committed: the group's next member starts after the batch.
    check = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **consumer_options(kafka_bootstrap),
    )
    await check.start()
    try:
        async with asyncio.timeout(30):
            while not check.assignment():
                await check.getmany(timeout_ms=200)
        [tp] = check.assignment()
        assert await check.committed(tp) == applied
    finally:
        await check.stop()
