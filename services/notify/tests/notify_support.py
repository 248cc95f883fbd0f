"""Notify test helpers: events as dialogs and routing would publish them, and an operator tab."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from openlines.events.catalog import (
    AssignedBy,
    ChannelType,
    Customer,
    DeliveryStatus,
    DialogAssigned,
    DialogOpened,
    Direction,
    MessageAppended,
    MessageDeliveryUpdated,
    ParticipantJoined,
    conversation_key,
)
from openlines.events.codec import encode
from openlines.events.envelope import Envelope, EventPayload, utc_now
from openlines.kit.http.auth import issue_token
from openlines.kit.settings import DEV_JWT_SECRET

LINE = "demo"
CHANNEL = "tg-demo"


class Dialog:
    """Builds the events of one dialog's stream, with consecutive versions."""

    def __init__(self, chat: str = "42") -> None:
        self.id = uuid.uuid4()
        self.chat = chat
        self.version = 0

    def event(self, payload: EventPayload) -> Envelope:
        self.version += 1
        return Envelope.new(
            payload, stream_id=str(self.id), stream_version=self.version, producer="dialogs"
        )

    def opened(self) -> Envelope:
        return self.event(
            DialogOpened(
                dialog_id=self.id,
                line_id=LINE,
                channel_id=CHANNEL,
                channel_type=ChannelType.TELEGRAM,
                conversation_key=conversation_key(CHANNEL, self.chat),
                customer=Customer(name="Carl", external_id=self.chat),
                external_user_id=self.chat,
                title="Carl",
            )
        )

    def assigned(self, operator_id: str, previous: str | None = None) -> Envelope:
        return self.event(
            DialogAssigned(
                dialog_id=self.id,
                operator_id=operator_id,
                assigned_by=AssignedBy.SUPERVISOR if previous else AssignedBy.ROUTING,
                previous_operator_id=previous,
                line_id=LINE,
            )
        )

    def message(self, text: str, direction: Direction = Direction.IN) -> Envelope:
        self.last_message_id = uuid.uuid4()
        return self.event(
            MessageAppended(
                dialog_id=self.id,
                message_id=self.last_message_id,
                direction=direction,
                text=text,
                channel_id=CHANNEL,
                conversation_key=conversation_key(CHANNEL, self.chat),
                sent_at=utc_now(),
            )
        )

    def delivery(self, status: DeliveryStatus) -> Envelope:
        return self.event(
            MessageDeliveryUpdated(
                dialog_id=self.id, message_id=self.last_message_id, status=status
            )
        )

    def joined(self, operator_id: str, actor_id: str) -> Envelope:
        return self.event(
            ParticipantJoined(dialog_id=self.id, operator_id=operator_id, actor_id=actor_id)
        )


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, namespace: str) -> None:
        self.producer = producer
        self.namespace = namespace

    async def publish(self, topic: str, *envelopes: Envelope) -> None:
        for env in envelopes:
            record = encode(env)
            await self.producer.send_and_wait(
                f"{self.namespace}{topic}", record.value, key=record.key, headers=record.headers
            )


def token(operator_id: str, role: str = "operator", **kwargs: Any) -> str:
    return issue_token(operator_id, [role], secret=DEV_JWT_SECRET, **kwargs)


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

    async def take(self, count: int) -> list[tuple[str, str]]:
        """The next `count` pushes as (type, reason)."""
        return [(m["type"], m["reason"]) for m in [await self.next() for _ in range(count)]]
