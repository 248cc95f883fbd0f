"""Trace context crosses the outbox and Kafka; shutdown finishes the batch in hand."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from multidict import CIMultiDict
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.telemetry import (
    context_from_http,
    current_trace_ids,
    current_traceparent,
    setup_tracing,
    tracer,
)
from openlines.kit.testing.infra import consumer_options

from .helpers import Kit, applied_once_each, catch_all, count_effect, make_counter, renamed


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


async def test_trace_id_travels_from_writer_through_kafka_to_consumer(kit: Kit) -> None:
    setup_tracing("kit-test")
    topic = await kit.new_topic(partitions=1)
    with tracer().start_as_current_span("operator request"):
        ids = current_trace_ids()
        assert ids is not None
        writer_trace = ids[0]
        async with kit.engine.begin() as conn:
            await kit.store.append(conn, "t1", 0, [renamed(1, "t1")], topic=topic)

    relay = kit.relay()
    assert await relay.publish_pending() == 1

    seen: list[str] = []

    async def remember_trace(conn: AsyncConnection, env: Envelope) -> None:
        ids = current_trace_ids()
        seen.append(ids[0] if ids else "none")

    runner = kit.runner(catch_all(f"trace-{kit.schema}", topic, remember_trace))
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


async def test_shutdown_finishes_the_batch_in_hand_and_commits(kit: Kit) -> None:
    await make_counter(kit.engine)
    topic = await kit.new_topic(partitions=1)
    for i in range(40):
        r = encode(Envelope.new(renamed(i, "s"), stream_id="s", stream_version=i + 1, producer="t"))
        await kit.producer.send(topic, r.value, key=r.key)
    await kit.producer.flush()

    stop = asyncio.Event()
    started_batch = asyncio.Event()

    async def slow(conn: AsyncConnection, env: Envelope) -> None:
        started_batch.set()
        await asyncio.sleep(0.02)  # 40 x 20 ms: the stop arrives mid-batch
        await count_effect(conn, env)

    group = f"shutdown-{kit.schema}"
    runner = kit.runner(catch_all(group, topic, slow, batch_size=40))
    task = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(30):
        await started_batch.wait()
    stop.set()  # one record of the batch is in the handler now
    await task
    applied = runner.status.applied
    assert applied > 1  # the rest of the batch in hand was applied, not dropped
    assert len(await applied_once_each(kit.engine)) == applied

    # Its offsets were committed: the group's next member starts after the batch.
    check = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kit.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **consumer_options(kit.bootstrap),
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
