from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.topics import DIALOGS
from openlines.kit.db.tables import outbox
from openlines.kit.eventstore import ConcurrencyConflict, DuplicateEvent, EventStore, NewEvent
from openlines.kit.testing.waiting import eventually

from .helpers import renamed


async def test_append_then_load_round_trips(engine: AsyncEngine, store: EventStore) -> None:
    async with engine.begin() as conn:
        written = await store.append(
            conn, "d1", 0, [renamed(1, "d1"), renamed(2, "d1")], topic=DIALOGS
        )
    async with engine.connect() as conn:
        loaded = await store.load(conn, "d1")
        assert await store.version(conn, "d1") == 2
        queued = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert [e.stream_version for e in loaded] == [1, 2]
    assert loaded == written
    assert queued == 2


async def test_concurrent_appends_at_same_version_one_wins(
    engine: AsyncEngine, store: EventStore
) -> None:
    async with engine.begin() as conn:
        await store.append(conn, "d2", 0, [renamed(0, "d2")], topic=DIALOGS)
    gate = asyncio.Event()
    holding: list[int] = []

    async def writer(i: int) -> str:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("SELECT 1")
            holding.append(i)
            await gate.wait()  # both hold an open transaction before either appends
            try:
                await store.append(conn, "d2", 1, [renamed(i, "d2")], topic=DIALOGS)
            except ConcurrencyConflict:
                return "conflict"
            await asyncio.sleep(0.05)  # keep the transaction open while the other tries
            return "ok"

    tasks = [asyncio.create_task(writer(i)) for i in range(2)]
    await eventually(lambda: len(holding) == 2)
    gate.set()
    outcomes = sorted(await asyncio.gather(*tasks))
    assert outcomes == ["conflict", "ok"]
    async with engine.connect() as conn:
        assert await store.version(conn, "d2") == 2


async def test_duplicate_event_id_is_reported_and_transaction_stays_usable(
    engine: AsyncEngine, store: EventStore
) -> None:
    event_id = uuid.uuid4()
    async with engine.begin() as conn:
        await store.append(
            conn, "d3", 0, [NewEvent(renamed(1, "d3"), event_id=event_id)], topic=DIALOGS
        )
    async with engine.begin() as conn:
        with pytest.raises(DuplicateEvent):
            await store.append(
                conn, "d3b", 0, [NewEvent(renamed(1, "d3b"), event_id=event_id)], topic=DIALOGS
            )
        await store.append(conn, "d3c", 0, [renamed(1, "d3c")], topic=DIALOGS)
    async with engine.connect() as conn:
        assert await store.version(conn, "d3b") == 0
        assert await store.version(conn, "d3c") == 1


async def test_causation_and_correlation_follow_the_cause(
    engine: AsyncEngine, store: EventStore
) -> None:
    async with engine.begin() as conn:
        [first] = await store.append(conn, "d4", 0, [renamed(1, "d4")], topic=DIALOGS)
        [second] = await store.append(conn, "d4", 1, [renamed(2, "d4")], topic=DIALOGS, cause=first)
    assert second.causation_id == first.event_id
    assert second.correlation_id == first.correlation_id


async def test_a_clash_midway_through_an_append_leaves_nothing_of_it(
    engine: AsyncEngine, store: EventStore
) -> None:
    known = uuid.uuid4()
    async with engine.begin() as conn:
        await store.append(
            conn,
            "d5",
            0,
            [renamed(1, "d5"), NewEvent(renamed(2, "d5"), event_id=known)],
            topic=DIALOGS,
        )
    async with engine.begin() as conn:
        # Version 2 is taken, version 3 is free: the insert is partial until cleaned up.
        with pytest.raises(ConcurrencyConflict):
            await store.append(conn, "d5", 1, [renamed(3, "d5"), renamed(4, "d5")], topic=DIALOGS)
        # A fresh stream's first event goes in, the known id does not.
        with pytest.raises(DuplicateEvent) as raised:
            await store.append(
                conn,
                "d6",
                0,
                [renamed(1, "d6"), NewEvent(renamed(2, "d6"), event_id=known)],
                topic=DIALOGS,
            )
        assert raised.value.event_ids == [known]
        await store.append(conn, "d7", 0, [renamed(1, "d7")], topic=DIALOGS)
    async with engine.connect() as conn:
        assert [e.payload.title for e in await store.load(conn, "d5")] == ["title 1", "title 2"]
        assert await store.version(conn, "d6") == 0
        assert await store.version(conn, "d7") == 1
        queued = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert queued == 3  # d5's two and d7's one: nothing of the refused appends
