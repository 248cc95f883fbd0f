"""Durable timers fire once with competing workers and survive a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit.testing.clock import TravelClock
from openlines.kit.testing.waiting import eventually
from openlines.kit.timers import Timer, TimerWorker, cancel, schedule


async def _setup(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE fired (key text, worker text)"))


def recorder(worker_name: str):
    async def handle(conn: AsyncConnection, timer: Timer) -> None:
        await conn.execute(
            text("INSERT INTO fired VALUES (:k, :w)"), {"k": timer.key, "w": worker_name}
        )
        await asyncio.sleep(0.01)  # widen the window in which a second worker could claim it

    return handle


async def _fired(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [(r.key, r.worker) for r in await conn.execute(text("SELECT * FROM fired"))]


async def _due(engine: AsyncEngine, expected: int) -> bool:
    async with engine.connect() as conn:
        due = await conn.execute(text("SELECT count(*) FROM timers WHERE due_at <= now()"))
        return due.scalar_one() == expected


async def test_each_timer_fires_once_with_two_workers(engine: AsyncEngine) -> None:
    await _setup(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for i in range(200):
            await schedule(conn, "sla", f"k{i}", now + timedelta(milliseconds=i))
        await schedule(conn, "sla", "moved", now + timedelta(hours=1))
        await schedule(conn, "sla", "cancelled", now)
        await cancel(conn, "sla", "cancelled")
    workers = [
        TimerWorker(engine, {"sla": recorder(n)}, batch_size=10, poll_interval=0.02)
        for n in ("a", "b")
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    async with asyncio.timeout(30):
        while sum(w.fired for w in workers) < 200:
            await asyncio.sleep(0.05)
    # Nothing is due any more (a timer is deleted as it fires): no further fire can happen.
    await eventually(lambda: _due(engine, 0))
    stop.set()
    await asyncio.gather(*tasks)
    fired = await _fired(engine)
    keys = [k for k, _ in fired]
    assert sorted(keys) == sorted(f"k{i}" for i in range(200))  # once each, none missing
    assert {w for _, w in fired} == {"a", "b"}  # both really competed
    assert "moved" not in keys and "cancelled" not in keys


async def test_timer_survives_a_restart(engine: AsyncEngine) -> None:
    await _setup(engine)
    async with engine.begin() as conn:
        await schedule(conn, "auto_close", "d1", datetime.now(UTC) + timedelta(milliseconds=400))
    stop = asyncio.Event()
    first = TimerWorker(engine, {"auto_close": recorder("first")}, poll_interval=0.05)
    started = first.last_tick_at
    task = asyncio.create_task(first.run(stop))
    await eventually(lambda: first.last_tick_at > started)  # it has looked at least once
    stop.set()  # the worker goes away before the timer is due
    await task
    assert await _fired(engine) == []

    stop = asyncio.Event()
    second = TimerWorker(engine, {"auto_close": recorder("second")}, poll_interval=0.05)
    task = asyncio.create_task(second.run(stop))
    async with asyncio.timeout(10):
        while second.fired < 1:
            await asyncio.sleep(0.05)
    stop.set()
    await task
    assert await _fired(engine) == [("d1", "second")]


async def test_failing_timer_is_retried_then_parked(engine: AsyncEngine) -> None:
    calls = 0

    async def broken(conn: AsyncConnection, timer: Timer) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    async with engine.begin() as conn:
        await schedule(conn, "x", "k", datetime.now(UTC))
    worker = TimerWorker(engine, {"x": broken}, max_attempts=2)
    await worker.fire_due()
    async with engine.begin() as conn:  # make the retry due now
        await conn.execute(text("UPDATE timers SET due_at = now()"))
    await worker.fire_due()
    await worker.fire_due()
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT attempts, dead, last_error FROM timers"))).one()
    assert calls == 2
    assert row.attempts == 2 and row.dead and "boom" in row.last_error


async def test_the_worker_fires_on_its_own_clock(engine: AsyncEngine) -> None:
    """Time travel: a timer an hour away fires once the worker's clock is moved past it."""
    await _setup(engine)
    clock = TravelClock()
    async with engine.begin() as conn:
        await schedule(conn, "sla", "later", clock.now() + timedelta(hours=1))
    worker = TimerWorker(engine, {"sla": recorder("w")}, clock=clock)
    assert await worker.fire_due() == 0
    clock.advance(3600)
    assert await worker.fire_due() == 1
    assert await _fired(engine) == [("later", "w")]
