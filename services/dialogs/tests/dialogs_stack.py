"""Test driver for the dialogs service running in-process on the real broker and Postgres.

Input events go to the namespaced topics through a plain producer (as ingest, routing,
outbound and crm-link would publish them); the operator API is driven over HTTP with dev JWTs.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text

from openlines.dialogs.handlers import opened_dialog_id
from openlines.events.catalog import ChannelType, Customer, MessageReceived
from openlines.events.codec import decode, encode
from openlines.events.envelope import Envelope, EventPayload, deterministic_event_id
from openlines.events.topics import DIALOGS, INBOUND
from openlines.kit.http.auth import issue_token
from openlines.kit.runtime import ServiceRuntime

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
CHANNEL = "tg-demo"
ROLES = {"ann": "operator", "bob": "operator", "sue": "supervisor", "zed": "operator"}
_external_ids = itertools.count(1)


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class DialogsStack:
    url: str
    namespace: str
    bootstrap: str
    runtime: ServiceRuntime
    http: aiohttp.ClientSession
    producer: AIOKafkaProducer
    _tokens: dict[str, str] = field(default_factory=dict)

    # -- HTTP -----------------------------------------------------------------------------

    def auth(self, who: str) -> dict[str, str]:
        if who not in self._tokens:
            secret = self.runtime.settings.jwt_secret
            self._tokens[who] = issue_token(who, [ROLES[who]], secret=secret)
        return {"Authorization": f"Bearer {self._tokens[who]}"}

    async def get(self, path: str, who: str = "sue", **params: Any) -> Reply:
        async with self.http.get(self.url + path, headers=self.auth(who), params=params) as r:
            return Reply(r.status, await r.json())

    async def post(
        self, path: str, who: str = "sue", json: Any = None, data: bytes | None = None
    ) -> Reply:
        headers = self.auth(who)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.post(self.url + path, headers=headers, json=json, data=data) as r:
            return Reply(r.status, await r.json())

    async def dialog(self, dialog_id: uuid.UUID, who: str = "sue") -> Reply:
        return await self.get(f"/api/v1/dialogs/{dialog_id}", who)

    async def timeline(self, dialog_id: uuid.UUID, who: str = "sue") -> list[dict[str, Any]]:
        reply = await self.get(f"/api/v1/dialogs/{dialog_id}/timeline", who)
        assert reply.status == 200, reply.body
        return list(reply.body["items"])

    # -- Kafka ----------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: EventPayload, *, stream_id: str, event_id: uuid.UUID | None
    ) -> Envelope:
        env = Envelope.new(
            payload, stream_id=stream_id, stream_version=0, producer="test", event_id=event_id
        )
        record = encode(env)
        await self.producer.send_and_wait(
            self.namespace + topic, record.value, key=record.key, headers=record.headers
        )
        return env

    async def customer_writes(
        self,
        chat_id: str,
        text: str = "hello",
        *,
        external_message_id: str | None = None,
        event_id: uuid.UUID | None = None,
        reply_to_external_id: str | None = None,
    ) -> Envelope:
        """What ingest publishes for a Telegram message (deterministic event id);
        `reply_to_external_id`: the provider id of the message the customer quotes."""
        external_message_id = external_message_id or str(next(_external_ids))
        message = MessageReceived(
            channel_id=CHANNEL,
            channel_type=ChannelType.TELEGRAM,
            conversation_key=f"{CHANNEL}:{chat_id}",
            external_chat_id=chat_id,
            external_user_id=chat_id,
            external_message_id=external_message_id,
            customer=Customer(name=f"Customer {chat_id}", external_id=chat_id),
            text=text,
            reply_to_external_id=reply_to_external_id,
            sent_at=datetime.now(UTC),
            line_id="demo",
        )
        return await self.publish(
            INBOUND,
            message,
            stream_id=message.conversation_key,
            event_id=event_id or deterministic_event_id(CHANNEL, chat_id, external_message_id),
        )

    async def open_dialog(self, chat_id: str, text: str = "hello") -> uuid.UUID:
        """A customer writes in a new conversation; returns the dialog once it is visible."""
        env = await self.customer_writes(chat_id, text)
        dialog_id = opened_dialog_id(env.event_id)
        await self.eventually(lambda: self._exists(dialog_id))
        return dialog_id

    async def _exists(self, dialog_id: uuid.UUID) -> bool:
        return (await self.dialog(dialog_id)).status == 200

    async def dialog_events(
        self, done: Callable[[list[Envelope]], bool], timeout: float = 30.0
    ) -> list[Envelope]:
        """Read the namespaced DIALOGS topic from the beginning until `done(events)`."""
        topic = self.namespace + DIALOGS
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        seen: list[Envelope] = []
        try:
            await consumer.topics()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            async with asyncio.timeout(timeout):
                while not done(seen):
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        seen += [decode(r.value, r.headers, topic=DIALOGS) for r in records]
        finally:
            await consumer.stop()
        return seen

    # -- waiting --------------------------------------------------------------------------

    async def handled(self, event_id: uuid.UUID) -> bool:
        """Has a dialogs consumer applied (or deliberately ignored) this input event?"""
        async with self.runtime.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM inbox WHERE event_id = :id"), {"id": event_id}
            )
            return found.first() is not None

    async def wait_handled(self, env: Envelope) -> None:
        await self.eventually(lambda: self.handled(env.event_id))

    async def eventually(self, check: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Poll `check` until it returns something truthy (bounded)."""
        async with asyncio.timeout(timeout):
            while True:
                outcome = await check()
                if outcome:
                    return outcome
                await asyncio.sleep(0.1)
