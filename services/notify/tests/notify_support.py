"""Notify test helpers: events as dialogs and routing would publish them, and an operator tab."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, NamedTuple

import aiohttp

from openlines.events.catalog import AssignedBy, DeliveryStatus, DialogRead, Direction
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.kit.testing import auth
from openlines.kit.testing.publish import Publisher

__all__ = ["CHANNEL", "LINE", "Dialog", "Publisher", "Running", "Tab", "token"]

LINE = "demo"
CHANNEL = "tg-demo"


class Running(NamedTuple):
    """The module's notify: its base URL and a publisher into its topic namespace."""

    url: str
    publisher: Publisher


class Dialog:
    """Builds the events of one dialog's stream, with consecutive versions."""

    def __init__(self, chat: str = "42") -> None:
        self.id = uuid.uuid4()
        self.chat = chat
        self.stream = factories.DialogStream()

    def event(self, payload: EventPayload) -> Envelope:
        return self.stream.envelope(payload)

    def opened(self) -> Envelope:
        return self.event(factories.dialog_opened(self.id, chat=self.chat, name="Carl"))

    def assigned(self, operator_id: str, previous: str | None = None) -> Envelope:
        by = AssignedBy.SUPERVISOR if previous else AssignedBy.ROUTING
        return self.event(
            factories.dialog_assigned(self.id, operator_id, by=by, previous_operator_id=previous)
        )

    def message(self, text: str, direction: Direction = Direction.IN) -> Envelope:
        appended = factories.message_appended(self.id, text, direction=direction, chat=self.chat)
        self.last_message_id = appended.message_id
        return self.event(appended)

    def delivery(self, status: DeliveryStatus) -> Envelope:
        return self.event(factories.message_delivery_updated(self.id, self.last_message_id, status))

    def reply(self, text: str, author_id: str) -> Envelope:
        appended = factories.message_appended(
            self.id, text, direction=Direction.OUT, chat=self.chat, author_id=author_id
        )
        return self.event(appended)

    def read(self, operator_id: str) -> Envelope:
        return self.event(DialogRead(dialog_id=self.id, operator_id=operator_id))

    def joined(self, operator_id: str, actor_id: str) -> Envelope:
        return self.event(factories.participant_joined(self.id, operator_id, actor_id))


def token(operator_id: str, role: str = "operator", **kwargs: Any) -> str:
    return auth.token(operator_id, role, **kwargs)


class Tab:
    """One open operator console: a WebSocket on /api/v1/stream."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        operator_id: str,
        role: str,
        lines: list[str] | None = None,
    ):
        self.http = http
        self.url = f"{base_url}/api/v1/stream"
        self.operator_id = operator_id
        self.role = role
        self.lines = lines  # the token's `lines` claim
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self, via_header: bool = False) -> dict[str, Any]:
        bearer = token(self.operator_id, self.role, lines=self.lines)
        if via_header:
            self.ws = await self.http.ws_connect(
                self.url, headers={"Authorization": f"Bearer {bearer}"}
            )
        else:
            self.ws = await self.http.ws_connect(self.url, params={"token": bearer})
        hello = await self.next()
        assert hello["type"] == "hello", hello
        return hello

    async def next(self, timeout: float = 45.0) -> dict[str, Any]:
        assert self.ws is not None
        async with asyncio.timeout(timeout):
            message = await self.ws.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def until_pong(self) -> list[dict[str, Any]]:
        """Everything queued for this session so far: a ping's pong is queued behind it."""
        assert self.ws is not None
        await self.ws.send_json({"type": "ping"})
        pushed = []
        while (message := await self.next())["type"] != "pong":
            pushed.append(message)
        return pushed

    async def counters(self) -> dict[str, Any]:
        """Ask for the counters; the answer (skipping pushes queued before it)."""
        assert self.ws is not None
        await self.ws.send_json({"type": "counters"})
        return await self.next_counters()

    async def next_counters(self, **wanted: int) -> dict[str, Any]:
        """The next counters frame (with `wanted` values: a batch may move them in steps)."""
        while True:
            message = await self.next()
            if message["type"] == "counters" and all(message[k] == v for k, v in wanted.items()):
                return message

    async def take(self, count: int) -> list[tuple[str, str]]:
        """The next `count` pushes as (type, reason)."""
        return [(m["type"], m["reason"]) for m in [await self.next() for _ in range(count)]]
