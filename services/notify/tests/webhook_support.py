"""A real webhook receiver for the tests: an aiohttp server on a reserved port that verifies
each delivery's signature, records it, and answers as its script says (fail, hang past the
sender's timeout, ask to retry after, say 410 Gone), then 200."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from openlines.events.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    verify,
)
from openlines.kit.embedded import reserve_port


@dataclass(frozen=True)
class Reply:
    status: int = 200
    hang: float = 0.0
    """Seconds to wait before answering (past the sender's timeout: it gives up)."""
    retry_after: str | None = None


@dataclass(frozen=True)
class Received:
    delivery_id: str
    event_type: str
    body: bytes
    signed: bool
    answered: int

    @property
    def envelope(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    secret: str = ""
    script: list[Reply] = field(default_factory=list)
    """Replies to the next requests, in order; once used up, 200."""
    default: Reply = field(default_factory=Reply)
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    port: int = field(default_factory=reserve_port)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        reply = self.script.pop(0) if self.script else self.default
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            signed = True
            try:
                verify(self.secret, body, request.headers.get(SIGNATURE_HEADER))
            except SignatureError:
                signed = False
            status = reply.status if signed else 400
            self.received.append(
                Received(
                    request.headers.get(DELIVERY_HEADER, ""),
                    request.headers.get(EVENT_HEADER, ""),
                    body,
                    signed,
                    status,
                )
            )
            self._changed.set()
            if reply.hang:
                await asyncio.sleep(reply.hang)
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            return web.Response(status=status, headers=headers)
        finally:
            self.in_flight -= 1

    # -- what came ------------------------------------------------------------------------

    def delivered_ids(self) -> list[str]:
        """Ids of the deliveries answered 2xx, in the order they were first answered so."""
        return list(dict.fromkeys(r.delivery_id for r in self.received if 200 <= r.answered < 300))

    def duplicates(self) -> int:
        """Deliveries answered 2xx more than once (the receiver dedupes them by id)."""
        counts = Counter(r.delivery_id for r in self.received if 200 <= r.answered < 300)
        return sum(n - 1 for n in counts.values())

    async def until(self, done: Callable[[Receiver], bool], timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while not done(self):
                self._changed.clear()
                await self._changed.wait()

    async def until_delivered(self, count: int, timeout: float = 60.0) -> None:
        await self.until(lambda r: len(r.delivered_ids()) >= count, timeout)
