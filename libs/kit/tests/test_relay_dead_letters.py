"""A record the broker can never take must not stop the relay; a failing relay must show it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import text

from openlines.events.catalog import Direction, MessageAppended
from openlines.events.codec import decode
from openlines.kit.kafka.producer import create_producer
from openlines.kit.testing.kafka import read_topic
from openlines.kit.testing.waiting import eventually

from .helpers import Kit, renamed

# Small enough that a test event can exceed it cheaply; the mechanism is the same at 1 MiB.
MAX_RECORD = 16 * 1024


@pytest.fixture
async def small_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = create_producer(kafka_bootstrap, client_id="kit-test-small", max_record_bytes=MAX_RECORD)
    await p.start()
    yield p
    await p.stop()


def _sample(name: str, schema: str) -> float:
    return REGISTRY.get_sample_value(name, {"schema": schema}) or 0.0


async def _until(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0) -> None:
    await eventually(condition, timeout=timeout)


async def test_an_oversized_record_is_dead_lettered_and_later_records_flow_in_order(
    kit: Kit, small_producer: AIOKafkaProducer
) -> None:
    topic = await kit.new_topic()
    big = MessageAppended(
        dialog_id=uuid.uuid5(uuid.NAMESPACE_URL, "s"),
        message_id=uuid.uuid4(),
        direction=Direction.IN,
        text="é" * MAX_RECORD,  # legal (within the catalog's bound), but over this producer's
        channel_id="tg",
        conversation_key="tg:1",
        sent_at=datetime.now(UTC),
    )
    async with kit.engine.begin() as conn:
        live = await kit.store.append(conn, "s", 0, [renamed(1, "s")], topic=topic)
        [dead] = await kit.store.append(conn, "s", 1, [big], topic=topic)
        live += await kit.store.append(conn, "s", 2, [renamed(3, "s")], topic=topic)
        live += await kit.store.append(conn, "other", 0, [renamed(1, "other")], topic=topic)
    expected = {e.event_id for e in live}
    relay = kit.relay(small_producer)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await read_topic(
            kit.bootstrap,
            topic,
            lambda got: expected <= {decode(r.value, r.headers).event_id for r in got},
            timeout=20,
        )
        await _until(lambda: relay.dead_lettered == 1)
    finally:
        stop.set()
        await task
    # The relay has stopped: the topic up to its end is all it ever published.
    records = await read_topic(kit.bootstrap, topic, 0, timeout=20, to_end=True)

    envelopes = [decode(r.value, r.headers, topic=topic) for r in records]
    assert len(envelopes) == 3  # each once: the round with the dead letter is not repeated
    assert dead.event_id not in {e.event_id for e in envelopes}
    by_stream = [(e.stream_id, e.stream_version) for e in envelopes if e.stream_id == "s"]
    # Version 2 is missing (dead-lettered); the later version still follows in order.
    assert by_stream == [("s", 1), ("s", 3)]
    async with kit.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT topic, headers, error, value FROM dead_letters"))
        ).all()
        left = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    assert left == 0
    [(dl_topic, headers, error, value)] = rows
    assert dl_topic == topic
    assert headers["event_id"] == str(dead.event_id)
    assert "MessageSizeTooLargeError" in error
    assert decode(value, topic=topic).event_id == dead.event_id  # kept whole, re-drivable
    assert _sample("openlines_relay_dead_letters_total", kit.schema) == 1
    assert _sample("openlines_relay_backlog", kit.schema) == 0


async def test_a_failing_relay_reports_its_backlog_and_stalls_readiness(kit: Kit) -> None:
    """Every round fails (the producer is closed, as after a lost broker connection): the
    backlog gauge shows the waiting records and the relay reports a stall once the bound passed."""
    topic = await kit.new_topic()
    async with kit.engine.begin() as conn:
        for i in range(3):
            await kit.store.append(conn, f"s{i}", 0, [renamed(1, f"s{i}")], topic=topic)
    broken = create_producer(kit.bootstrap, client_id="kit-test-broken")
    await broken.start()
    await broken.stop()
    relay = kit.relay(broken)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await _until(lambda: _sample("openlines_relay_errors_total", kit.schema) >= 1)
        assert _sample("openlines_relay_backlog", kit.schema) == 3
        assert not relay.stalled(after_seconds=3600)  # the bound has not passed
        await _until(lambda: relay.stalled(after_seconds=0.5))
    finally:
        stop.set()
        await task

    # Once it publishes again, the gauge drops and the stall is over.
    async with create_producer(kit.bootstrap, client_id="kit-test-fixed") as fixed:
        relay.producer = fixed
        relay.is_leader = True  # publish_pending is called directly, as the leader would
        assert await relay.publish_pending() == 3
    assert _sample("openlines_relay_backlog", kit.schema) == 0
    assert not relay.stalled(after_seconds=0.0)
