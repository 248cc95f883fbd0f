"""The relay is SIGKILLed halfway, then restarted: every event arrives, and a projection shows
each effect exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.codec import decode
from openlines.kit.consumer import ConsumerRunner
from openlines.kit.db.tables import outbox
from openlines.kit.eventstore import EventStore
from openlines.kit.testing.infra import consumer_options

from .helpers import catch_all, read_all, renamed
from .test_consumer import _effects, _make_counter, _run_until, count_effect

TOTAL = 3000


async def _backlog(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


async def _start_relay(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> asyncio.subprocess.Process:
    script = Path(__file__).with_name("relay_process.py")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        database_url,
        db_schema,
        kafka_bootstrap,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


async def test_relay_killed_halfway_then_restarted(
    engine: AsyncEngine,
    db_schema: str,
    database_url: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., Awaitable[str]],
    producer: AIOKafkaProducer,
    store: EventStore,
) -> None:
    topic = await new_topic()
    async with engine.begin() as conn:
        for s in range(30):
            stream = f"s{s}"
            await store.append(
                conn, stream, 0, [renamed(i, stream) for i in range(TOTAL // 30)], topic=topic
            )
    assert await _backlog(engine) == TOTAL

    relay = await _start_relay(database_url, db_schema, kafka_bootstrap)
    async with asyncio.timeout(60):
        while await _backlog(engine) > TOTAL // 2:
            await asyncio.sleep(0.005)
    relay.send_signal(signal.SIGKILL)
    await relay.wait()
    left = await _backlog(engine)
    assert 0 < left < TOTAL, "the kill must land halfway for this test to mean anything"

    relay = await _start_relay(database_url, db_schema, kafka_bootstrap)
    try:
        async with asyncio.timeout(60):
            while await _backlog(engine) > 0:
                await asyncio.sleep(0.05)
    finally:
        relay.terminate()
        await relay.wait()

    records = await read_all(kafka_bootstrap, topic, TOTAL)
    envelopes = [decode(r.value, r.headers, topic=topic) for r in records]
    assert len({e.event_id for e in envelopes}) == TOTAL

    # A projection over the topic applies each event exactly once, duplicates or not.
    await _make_counter(engine)

    runner = ConsumerRunner(
        catch_all(f"crash-{db_schema}", topic, count_effect, batch_size=200),
        engine=engine,
        bootstrap=kafka_bootstrap,
        dlq_producer=producer,
        consumer_options=consumer_options(kafka_bootstrap),
    )

    async def done() -> bool:
        return runner.status.applied >= TOTAL and runner.status.lag == 0

    await _run_until(runner, done, timeout=90)
    effects = await _effects(engine)
    assert len(effects) == TOTAL
    assert set(effects.values()) == {1}
    duplicates = len(records) - TOTAL
    print(f"records on the topic: {len(records)} (duplicates from the kill: {duplicates})")
