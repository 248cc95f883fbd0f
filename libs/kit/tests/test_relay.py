"""Relay completeness and ordering under concurrent writers whose commits interleave."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from sqlalchemy import text

from openlines.events.codec import decode
from openlines.kit.relay import OutboxRelay
from openlines.kit.testing.waiting import eventually

from .helpers import Kit, read_all, renamed

WRITERS = 8
EVENTS_PER_WRITER = 1000
STREAMS_PER_WRITER = 10


async def test_eight_concurrent_writers_nothing_missing_order_kept(kit: Kit) -> None:
    topic = await kit.new_topic()
    relay = kit.relay(batch_size=300)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    rng = random.Random(7)

    async def writer(w: int) -> None:
        versions: dict[str, int] = defaultdict(int)
        for i in range(EVENTS_PER_WRITER):
            stream = f"w{w}-s{i % STREAMS_PER_WRITER}"
            async with kit.engine.begin() as conn:
                await kit.store.append(
                    conn, stream, versions[stream], [renamed(i, stream)], topic=topic
                )
                if rng.random() < 0.05:
                    # Hold the commit back so positions from other writers commit first.
                    await conn.execute(text("SELECT pg_sleep(0.003)"))
            versions[stream] += 1

    try:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        records = await read_all(kit.bootstrap, topic, WRITERS * EVENTS_PER_WRITER)
    finally:
        stop.set()
        await relay_task

    envelopes = [decode(r.value, r.headers, topic=topic) for r in records]
    unique = {e.event_id for e in envelopes}
    assert len(unique) == WRITERS * EVENTS_PER_WRITER
    for record, env in zip(records, envelopes, strict=True):
        assert record.key == env.stream_id.encode()
    seen: dict[str, list[int]] = defaultdict(list)
    for env in envelopes:
        if env.stream_version not in seen[env.stream_id]:
            seen[env.stream_id].append(env.stream_version)
    assert len(seen) == WRITERS * STREAMS_PER_WRITER
    for stream, versions in seen.items():
        assert versions == list(range(1, len(versions) + 1)), stream


async def test_a_lower_position_committing_late_is_published_not_skipped(kit: Kit) -> None:
    """The classic outbox bug: rows [p+1] are read and sent; the transaction holding p commits
    before the relay deletes what it sent. p must survive that delete and be sent later."""
    topic = await kit.new_topic()
    slow = await kit.engine.connect()
    await slow.begin()
    [late] = await kit.store.append(slow, "late", 0, [renamed(1, "late")], topic=topic)
    async with kit.engine.begin() as fast:  # takes the next position and commits first
        [early] = await kit.store.append(fast, "early", 0, [renamed(1, "early")], topic=topic)

    class CommitsLateRowMidRound(OutboxRelay):
        async def send(self, rows):
            unpublishable = await super().send(rows)
            if slow.in_transaction():
                await slow.commit()  # after the read, before the delete
            return unpublishable

    relay = kit.relay(cls=CommitsLateRowMidRound)
    try:
        assert await relay.publish_pending() == 1  # only "early" was visible
        assert await relay.publish_pending() == 1  # the lower position, a round later
        assert await relay.publish_pending() == 0
        records = await read_all(kit.bootstrap, topic, 2)
    finally:
        await slow.close()
    ids = {decode(r.value, r.headers, topic=topic).event_id for r in records}
    assert ids == {late.event_id, early.event_id}


async def test_an_idle_relay_is_woken_by_the_commit_not_by_polling(kit: Kit) -> None:
    topic = await kit.new_topic()
    # Polling alone would take a minute: only the outbox trigger's NOTIFY can beat the timeout.
    relay = kit.relay(poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        # The marker that the relay has drained the (empty) outbox and waits: a round done as
        # the leader sets both clocks at once (taking the lead sets only the progress one).
        await eventually(
            lambda: relay.is_leader and relay.last_round_at == relay.last_progress_at,
            timeout=20,
        )
        async with kit.engine.begin() as conn:
            await kit.store.append(conn, "woken", 0, [renamed(1, "woken")], topic=topic)
        async with asyncio.timeout(10):
            while relay.published < 1:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
