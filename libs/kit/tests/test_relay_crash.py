"""The relay is SIGKILLed halfway, then restarted: every event arrives, and a projection shows
each effect exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.codec import decode
from openlines.kit.db.tables import outbox

from .helpers import (
    Kit,
    applied_once_each,
    catch_all,
    count_effect,
    has_applied,
    make_counter,
    read_all,
    renamed,
    run_until,
)

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


async def test_relay_killed_halfway_then_restarted(kit: Kit) -> None:
    topic = await kit.new_topic()
    async with kit.engine.begin() as conn:
        for s in range(30):
            stream = f"s{s}"
            await kit.store.append(
                conn, stream, 0, [renamed(i, stream) for i in range(TOTAL // 30)], topic=topic
            )
    assert await _backlog(kit.engine) == TOTAL

    relay = await _start_relay(kit.database_url, kit.schema, kit.bootstrap)
    async with asyncio.timeout(60):
        while await _backlog(kit.engine) > TOTAL // 2:
            await asyncio.sleep(0.005)
    relay.send_signal(signal.SIGKILL)
    await relay.wait()
    left = await _backlog(kit.engine)
    assert 0 < left < TOTAL, "the kill must land halfway for this test to mean anything"

    relay = await _start_relay(kit.database_url, kit.schema, kit.bootstrap)
    try:
        async with asyncio.timeout(60):
            while await _backlog(kit.engine) > 0:
                await asyncio.sleep(0.05)
    finally:
        relay.terminate()
        await relay.wait()

    records = await read_all(kit.bootstrap, topic, TOTAL)
    envelopes = [decode(r.value, r.headers, topic=topic) for r in records]
    assert len({e.event_id for e in envelopes}) == TOTAL

    # A projection over the topic applies each event exactly once, duplicates or not.
    await make_counter(kit.engine)

    runner = kit.runner(catch_all(f"crash-{kit.schema}", topic, count_effect, batch_size=200))
    await run_until(runner, has_applied(runner, TOTAL), timeout=90)
    assert len(await applied_once_each(kit.engine)) == TOTAL
    duplicates = len(records) - TOTAL
    print(f"records on the topic: {len(records)} (duplicates from the kill: {duplicates})")
