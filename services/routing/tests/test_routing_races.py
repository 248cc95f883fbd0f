"""Capacity under concurrency: racing reservations, racing drains, two routing workers."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.catalog import AssignDialog, PresenceStatus
from openlines.events.lines import load_lines
from openlines.kit.db.tables import inbox, outbox
from openlines.kit.outbox import Outbox
from openlines.kit.testing.service import migrated_engine
from openlines.kit.testing.waiting import eventually, outbox_drained
from openlines.routing import store
from openlines.routing.domain import DialogSlot, SlotStatus
from openlines.routing.router import Router
from openlines.routing.tables import dialog_slots

from .routing_support import Routing, assigned, closed, opened, routing_running, routing_settings

MIGRATIONS = Path(store.__file__).parent / "migrations"


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, MIGRATIONS, pool_size=15) as eng:
        yield eng


@pytest.fixture
def router(lines_file: Path, db_schema: str) -> Router:
    return Router(
        load_lines(lines_file),
        Outbox(db_schema),
        schema=db_schema,
        producer="routing",
        reservation_timeout=timedelta(seconds=30),
    )


async def _online(engine: AsyncEngine, router: Router, *operators: str) -> None:
    async with engine.begin() as conn:
        await store.sync_operators(conn, router.lines)
        for operator_id in operators:
            await store.set_presence(conn, operator_id, PresenceStatus.ONLINE)


async def test_racing_reservations_never_exceed_max_dialogs(
    engine: AsyncEngine, router: Router
) -> None:
    # No routing lock here on purpose: the conditional UPDATE alone must hold the line.
    await _online(engine, router, "ann")
    inside = asyncio.Barrier(12)

    async def reserve() -> bool:
        async with engine.begin() as conn:
            await inside.wait()
            won = await store.try_reserve(conn, "ann")
            await asyncio.sleep(0.1)  # keep the row lock while the others queue up on it
            return won

    results = await asyncio.gather(*(reserve() for _ in range(12)))
    assert results.count(True) == 2
    async with engine.connect() as conn:
        [ann] = await store.candidates(conn, ["ann"])
    assert (ann.active, ann.reserved) == (0, 2)


async def test_concurrent_drains_hand_out_exactly_the_free_capacity(
    engine: AsyncEngine, router: Router
) -> None:
    await _online(engine, router, "ann", "bob")
    start = datetime.now(UTC) - timedelta(minutes=5)
    waiting = [uuid.uuid4() for _ in range(30)]
    async with engine.begin() as conn:
        for n, dialog_id in enumerate(waiting):
            slot = DialogSlot(dialog_id, "demo", SlotStatus.QUEUED)
            await store.save_slot(conn, slot, queued_at=start + timedelta(seconds=n))

    async def drain() -> int:
        async with engine.begin() as conn:
            return await router.drain(conn, ["demo"], cause=None)

    handed = await asyncio.gather(*(drain() for _ in range(10)))
    assert sum(handed) == 4
    async with engine.connect() as conn:
        load = {
            c.operator_id: (c.active, c.reserved)
            for c in await store.candidates(conn, ["ann", "bob"])
        }
        reserved = (
            await conn.execute(
                select(dialog_slots.c.dialog_id, dialog_slots.c.operator_id).where(
                    dialog_slots.c.status == "reserved"
                )
            )
        ).all()
        commands = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert load == {"ann": (0, 2), "bob": (0, 2)}
    # The four oldest were handed out, two to each operator, one AssignDialog each.
    assert {row.dialog_id for row in reserved} == set(waiting[:4])
    assert Counter(row.operator_id for row in reserved) == {"ann": 2, "bob": 2}
    assert commands == 4


async def _applied(routing: Routing) -> int:
    async with routing.runtime.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(inbox)
                    .where(inbox.c.consumer == "routing.dialogs")
                )
            ).scalar_one()
        )


async def _state(routing: Routing) -> tuple[dict[str, tuple[int, int]], int]:
    async with routing.runtime.engine.connect() as conn:
        counters = {
            row.operator_id: (row.active, row.reserved)
            for row in await conn.execute(
                text("SELECT operator_id, active, reserved FROM operators")
            )
        }
        recount = await store.load_counts(conn)
        waiting = (await store.queue_stats(conn, ["demo"]))["demo"].waiting
    # The counters capacity is checked against always equal a recount of the slots.
    for operator_id, (active, reserved_) in counters.items():
        found = recount.get(operator_id)
        assert ((found.active, found.reserved) if found else (0, 0)) == (active, reserved_)
    return counters, waiting


async def test_two_routing_workers_never_exceed_max_dialogs(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> None:
    # Two replicas: same schema, same topics, same consumer group (partitions split).
    first = routing_settings(kafka_bootstrap, database_url, db_schema, lines_file)
    second = routing_settings(kafka_bootstrap, database_url, db_schema, lines_file)
    async with routing_running(first) as a, routing_running(second):
        await a.presence("ann", "online")
        await a.presence("bob", "online")
        dialogs = [uuid.uuid4() for _ in range(20)]
        published = 0
        for dialog_id in dialogs:
            await a.dialogs.publish(opened(dialog_id))
            published += 1

        offered: list[AssignDialog] = []
        for round_ in range(5):
            async with asyncio.timeout(60):
                while await _applied(a) < published:
                    await asyncio.sleep(0.05)
            counters, waiting = await _state(a)
            assert counters["ann"] == (0, 2) and counters["bob"] == (0, 2), counters
            assert waiting == 20 - 4 * (round_ + 1)
            offered = await a.commands.commands(4 * (round_ + 1))
            this_round = offered[4 * round_ :]
            assert Counter(c.operator_id for c in this_round) == {"ann": 2, "bob": 2}
            # Both operators confirm and finish their dialogs at once: capacity frees up on
            # all partitions, so both workers drain concurrently.
            for command in this_round:
                await a.dialogs.publish(assigned(command.dialog_id, command.operator_id))
                await a.dialogs.publish(closed(command.dialog_id, command.operator_id))
                published += 2

        async with asyncio.timeout(60):
            while await _applied(a) < published:
                await asyncio.sleep(0.05)
        counters, waiting = await _state(a)
        assert counters["ann"] == counters["bob"] == (0, 0)
        assert waiting == 0
        # A late duplicate command would be in the outbox, or on the topic before its end.
        await eventually(lambda: outbox_drained(a.runtime.engine))
        await a.commands.read_to_end()
        assert sorted(c.dialog_id for c in a.commands.of(AssignDialog)) == sorted(dialogs)
