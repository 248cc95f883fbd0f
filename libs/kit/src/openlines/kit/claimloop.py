"""The claim/wake loop of a worker that takes due rows from its own table and handles each as a
task (outbound's sender, notify's webhook dispatcher).

Each round claims what is due and free capacity allows, starts one task per claimed item, then
waits for the next poll, a wake (new work was recorded, or a task finished and freed a slot) or
the stop. While the database is away the loop backs off instead of failing. Cancelled (or
crashed), it cancels its tasks like a killed process would: what they claimed stays claimed
until the worker's lease says otherwise. Stopped gracefully, it lets them finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from openlines.kit.db.retry import is_retryable
from openlines.kit.log import get_logger

log = get_logger(__name__)

C = TypeVar("C")


class ClaimLoop(Generic[C]):
    def __init__(
        self,
        claim: Callable[[], Awaitable[Sequence[C]]],
        *,
        poll_seconds: float,
        waiting_message: str,
        crashed_message: str,
    ) -> None:
        self.claim = claim  # one round's claim; [] when there is no free capacity
        self.poll_seconds = poll_seconds
        self.waiting_message = waiting_message  # logged while the database is away
        self.crashed_message = crashed_message  # logged when a task raised
        self.last_round_at = time.monotonic()
        self.in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work was recorded: look now rather than at the next poll."""
        self._wake.set()

    async def run(
        self, stop: asyncio.Event, handle: Callable[[C], Coroutine[Any, Any, None]]
    ) -> None:
        try:
            await self._loop(stop, handle)
        except BaseException:
            for task in list(self.in_flight):
                task.cancel()
            raise
        if self.in_flight:  # graceful stop: each task is bounded by its call's timeout
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    async def _loop(
        self, stop: asyncio.Event, handle: Callable[[C], Coroutine[Any, Any, None]]
    ) -> None:
        delay = 0.2
        while not stop.is_set():
            self._wake.clear()
            try:
                claimed = await self.claim()
                delay = 0.2
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning(self.waiting_message, error=repr(exc))
                claimed = []
                await wait_any(stop, asyncio.Event(), delay)
                delay = min(delay * 2, 5.0)
            self.last_round_at = time.monotonic()
            for item in claimed:
                task = asyncio.create_task(handle(item))
                self.in_flight.add(task)
                task.add_done_callback(self._finished)
            await wait_any(stop, self._wake, self.poll_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self._wake.set()  # a slot is free, and the next item of that queue may be due
        if not task.cancelled() and task.exception() is not None:
            log.error(self.crashed_message, error=repr(task.exception()))


async def wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Until either event is set or `timeout` passed, whichever comes first."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
