"""The delivery queue in Postgres: one in flight per dialog and subscription, a bounded share
per subscription, claims that never overlap, stale claims re-queued, history forgotten."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit.testing.service import migrated_engine
from openlines.notify.webhooks import store

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "openlines" / "notify" / "migrations"


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, MIGRATIONS, pool_size=4) as it:
        yield it


async def subscription(conn: AsyncConnection, **values: object) -> uuid.UUID:
    row = await store.create_subscription(
        conn,
        {
            "id": uuid.uuid4(),
            "url": "http://93.184.215.14/",
            "event_types": ["*"],
            "lines": [],
            "secret": "s" * 16,
            "created_by": "t",
            **values,
        },
    )
    return uuid.UUID(str(row.id))


async def record(conn: AsyncConnection, key: str, n: int) -> int:
    event = store.NewEvent(uuid.uuid4(), "DialogOpened", key, b"{}", "demo", None, None)
    queued = await store.record(conn, event, 3600)
    return queued * n


async def test_claims_take_the_head_of_each_dialog_and_a_bounded_share_per_subscription(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        a = await subscription(conn)
        b = await subscription(conn, event_types=["DialogClosed"])  # takes none of these
        c = await subscription(conn, lines=["vip"])  # nor these (their line is demo)
        for i in range(3):
            for key in ("d1", "d2", "d3", "d4", "d5"):
                assert await record(conn, key, i) == i  # one delivery each: subscription a
    async with engine.begin() as conn:
        first = await store.claim(conn, limit=100, per_subscription=3)
    assert {x.subscription_id for x in first} == {a} and b != c
    assert len(first) == 3  # the share of a subscription, though five dialogs are due
    async with engine.begin() as conn:
        assert await store.claim(conn, limit=100, per_subscription=3) == []  # a is at its share
        for claimed in first:
            assert await store.mark_delivered(conn, claimed, 200)
    async with engine.begin() as conn:
        second = await store.claim(conn, limit=100, per_subscription=10)
    # Five dialogs, one head each: the next of d1-d3 (after their delivered first) and the
    # first of d4, d5. Never two of one dialog at once.
    assert len(second) == 5
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT order_key, count(*) FROM webhook_deliveries"
                    " WHERE state = 'delivering' GROUP BY 1"
                )
            )
        ).all()
    assert sorted(r.order_key for r in rows) == ["d1", "d2", "d3", "d4", "d5"]
    assert all(r.count == 1 for r in rows)


async def test_concurrent_claims_never_take_the_same_delivery(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await subscription(conn)
        for i in range(40):
            await record(conn, f"k{i}", 1)

    async def claim_some() -> list[uuid.UUID]:
        async with engine.begin() as conn:
            return [c.id for c in await store.claim(conn, limit=15, per_subscription=40)]

    # Claimers racing for the same rows skip what another holds (and may come back short):
    # rounds of four at once until every delivery is claimed, none twice.
    every: list[uuid.UUID] = []
    for _ in range(10):
        claimed = await asyncio.gather(*(claim_some() for _ in range(4)))
        every += [i for batch in claimed for i in batch]
        if len(every) >= 40:
            break
    assert len(every) == len(set(every)) == 40


async def test_a_stale_claim_is_queued_again_and_its_owner_can_no_longer_settle_it(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await subscription(conn)
        await record(conn, "k", 1)
    async with engine.begin() as conn:
        [lost] = await store.claim(conn, limit=10, per_subscription=4)
    async with engine.begin() as conn:
        assert await store.requeue_expired(conn, lease_seconds=3600) == 0
        await conn.execute(
            text("UPDATE webhook_deliveries SET claimed_at = now() - '1 hour'::interval")
        )
        assert await store.requeue_expired(conn, lease_seconds=60) == 1
    async with engine.begin() as conn:
        [again] = await store.claim(conn, limit=10, per_subscription=4)
        assert again.id == lost.id and again.attempt == 2
        assert not await store.mark_delivered(conn, lost, 200)  # the old claim is void
        assert await store.mark_delivered(conn, again, 200)


async def test_delivered_history_is_forgotten_and_dead_letters_kept(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await subscription(conn)
        await record(conn, "k1", 1)
        await record(conn, "k2", 1)
    async with engine.begin() as conn:
        done, dead = await store.claim(conn, limit=10, per_subscription=4)
        await store.mark_delivered(conn, done, 200)
        await store.mark_failed(conn, dead, "gave up", 500)
    async with engine.begin() as conn:
        assert await store.forget_delivered(conn, keep_seconds=3600) == 0
        await conn.execute(
            text(
                "UPDATE webhook_deliveries SET delivered_at = now() - '2 hours'::interval"
                " WHERE state = 'delivered'"
            )
        )
        assert await store.forget_delivered(conn, keep_seconds=3600) == 1
        states = (await conn.execute(text("SELECT id, state FROM webhook_deliveries"))).all()
    assert [(r.id, r.state) for r in states] == [(dead.id, "failed")]
