"""Durable timers: rows in Postgres, claimed with FOR UPDATE SKIP LOCKED.

A timer fires at most once per schedule because the claim, the handler's effect and the delete
share one transaction; a crash before commit leaves the row for the next worker. Scheduling the
same (name, key) again moves the existing timer (SLA and auto-close timers are re-armed often).

"Now" is the worker's `clock` (the wall clock unless a test injects one), never the database's:
a test travels in time by moving its clock instead of sleeping for the minutes a timer waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit import metrics
from openlines.kit.db.retry import is_retryable
from openlines.kit.db.tables import timers
from openlines.kit.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Timer:
    id: int
    name: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


TimerHandler = Callable[[AsyncConnection, Timer], Awaitable[None]]
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


# Statements built once: per-call construction costs more CPU than executing them.
_new_timer = insert(timers)
SCHEDULE = _new_timer.on_conflict_do_update(
    constraint="timers_name_key_key",
    set_={
        "due_at": _new_timer.excluded.due_at,
        "payload": _new_timer.excluded.payload,
        "attempts": 0,
        "dead": False,
        "last_error": None,
    },
)
CANCEL = delete(timers).where(timers.c.name == bindparam("name"), timers.c.key == bindparam("key"))


async def schedule(
    conn: AsyncConnection,
    name: str,
    key: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        SCHEDULE, {"name": name, "key": key, "due_at": due_at, "payload": payload or {}}
    )


async def cancel(conn: AsyncConnection, name: str, key: str) -> None:
    await conn.execute(CANCEL, {"name": name, "key": key})


_LOCK_KEY = text(
    "SELECT id FROM timers WHERE key = :key AND name = ANY(:names) ORDER BY id FOR UPDATE"
)


async def lock_key(conn: AsyncConnection, names: list[str], key: str) -> None:
    """Wait for a worker firing one of these timers of `key`, and keep them until commit.

    For a writer that re-arms timers from facts a timer handler also writes: taking the timer
    rows before the facts is the order the worker takes them in (claim, then handler), so the
    two never deadlock."""
    await conn.execute(_LOCK_KEY, {"key": key, "names": names})


_CLAIM = text(
    "SELECT id, name, key, due_at, payload, attempts FROM timers "
    "WHERE NOT dead AND due_at <= :now AND name = ANY(:names) "
    "ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


class TimerWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        handlers: dict[str, TimerHandler],
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        max_attempts: int = 5,
        clock: Clock = wall_clock,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.handlers = handlers
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.last_tick_at = time.monotonic()
        self.fired = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                count = await self.fire_due()
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning("timer worker waiting for the database", error=repr(exc))
                count = 0
            self.last_tick_at = time.monotonic()
            if count < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def fire_due(self) -> int:
        """Fire the timers that are due now; returns how many were claimed."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    _CLAIM,
                    {"names": list(self.handlers), "limit": self.batch_size, "now": self.clock()},
                )
            ).all()
            for row in rows:
                timer = Timer(**row._mapping)
                await self._fire(conn, timer)
        return len(rows)

    async def _fire(self, conn: AsyncConnection, timer: Timer) -> None:
        try:
            async with conn.begin_nested():
                await self.handlers[timer.name](conn, timer)
                await conn.execute(delete(timers).where(timers.c.id == timer.id))
            self.fired += 1
            metrics.TIMERS_FIRED.labels(timer.name).inc()
        except Exception as exc:
            if is_retryable(exc):
                raise  # the whole claim goes again; not the handler's fault
            metrics.TIMERS_FAILED.labels(timer.name).inc()
            attempts = timer.attempts + 1
            dead = attempts >= self.max_attempts
            log.warning(
                "timer handler failed",
                timer=timer.name,
                key=timer.key,
                attempts=attempts,
                dead=dead,
                error=repr(exc),
            )
            await conn.execute(
                timers.update()
                .where(timers.c.id == timer.id)
                .values(
                    attempts=attempts,
                    dead=dead,
                    last_error=repr(exc)[:2000],
                    due_at=self.clock() + timedelta(seconds=2**attempts),
                )
            )
