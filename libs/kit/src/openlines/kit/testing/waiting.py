"""Waiting for a marker, never sleeping and hoping.

`eventually` polls a check until it holds (bounded); `handled` asks a service's inbox whether
a consumer applied (or deliberately ignored) an event. To show that *nothing else* happened,
publish a marker after the events in question (same key, so same partition and order) and
wait until the marker is handled: everything before it was handled too.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

POLL_SECONDS = 0.05


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    what: str | None = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float = ...,
    what: str | None = ...,
    interval: float = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 30.0,
    what: str | None = None,
    interval: float = POLL_SECONDS,
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy, and return that."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                outcome = check()
                last = await outcome if inspect.isawaitable(outcome) else outcome
                if last:
                    return last
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what or check}; last: {last!r}"
        ) from None


async def handled(engine: AsyncEngine, event_id: UUID, consumer: str | None = None) -> bool:
    """Has a consumer of this service (`consumer`, where a service has several: each records
    the events it handled) recorded the event in its inbox?"""
    where = "event_id = :id" + (" AND consumer = :consumer" if consumer is not None else "")
    async with engine.connect() as conn:
        found = await conn.execute(
            text(f"SELECT 1 FROM inbox WHERE {where}"), {"id": event_id, "consumer": consumer}
        )
        return found.first() is not None


async def outbox_drained(engine: AsyncEngine) -> bool:
    """Has this service's relay published everything it recorded? (It deletes a row once the
    broker acknowledged it.)"""
    async with engine.connect() as conn:
        left = await conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM outbox)"))
        return bool(left.scalar_one())


async def wait_handled(
    engine: AsyncEngine, event_id: UUID, *, timeout: float = 30.0, consumer: str | None = None
) -> None:
    await eventually(
        lambda: handled(engine, event_id, consumer), timeout=timeout, what=f"event {event_id}"
    )
