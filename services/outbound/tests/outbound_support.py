"""Outbound test helpers: the fake Telegram Bot API, events to publish, the OUTBOUND reader."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from openlines.events.catalog import DeliveryStatus, Direction, MessageAppended, conversation_key
from openlines.events.codec import decode, encode
from openlines.events.envelope import Envelope, utc_now
from openlines.events.topics import DIALOGS, OUTBOUND
from openlines.kit.kafka.producer import create_producer

CHANNEL = "tg-test"
TOKEN = "111:test-token"
SEND_PATH = f"/{CHANNEL}/bot{TOKEN}/sendMessage"


@dataclass
class Reply:
    """A scripted provider answer; `hang` never answers (until the test ends)."""

    status: int = 200
    body: dict[str, Any] | None = None
    hang: bool = False


def ok() -> Reply:
    return Reply(200)


def error(status: int, description: str, retry_after: int | None = None) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Reply(status, body)


@dataclass
class FakeTelegram:
    """Answers sendMessage from a script (then 200), records every request."""

    url: str = ""
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(
            {
                "path": request.path,
                "json": body,
                "headers": dict(request.headers),
                "at": time.monotonic(),
            }
        )
        self.received.set()
        reply = self.script.pop(0) if self.script else ok()
        if reply.hang:
            await self.release.wait()
            return web.json_response({"ok": False}, status=499)
        if reply.status == 200 and reply.body is None:
            message_id = next(self._ids)
            result = {"message_id": message_id, "chat": {"id": body.get("chat_id")}, "date": 0}
            return web.json_response({"ok": True, "result": {**result, "text": body.get("text")}})
        return web.json_response(reply.body or {"ok": False}, status=reply.status)

    def texts(self) -> list[str]:
        return [r["json"]["text"] for r in self.requests]


def reply_event(
    text: str | None,
    *,
    chat: str = "42",
    channel: str = CHANNEL,
    direction: Direction = Direction.OUT,
    dialog_id: uuid.UUID | None = None,
    reply_to: uuid.UUID | None = None,
    external_message_id: str | None = None,
) -> Envelope:
    dialog_id = dialog_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{channel}:{chat}")
    message = MessageAppended(
        dialog_id=dialog_id,
        message_id=uuid.uuid4(),
        direction=direction,
        author_id="ann" if direction in (Direction.OUT, Direction.NOTE) else None,
        text=text,
        reply_to=reply_to,
        external_message_id=external_message_id,
        status=DeliveryStatus.QUEUED if direction is Direction.OUT else None,
        channel_id=channel,
        conversation_key=conversation_key(channel, chat),
        sent_at=utc_now(),
    )
    return Envelope.new(message, stream_id=str(dialog_id), stream_version=1, producer="dialogs")


class Dialogs:
    """Publishes to the namespaced DIALOGS topic, as the dialogs service's relay would."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.producer = create_producer(bootstrap, client_id="test-dialogs")
        self.topic = f"{namespace}{DIALOGS}"

    async def publish(self, *envelopes: Envelope) -> None:
        for env in envelopes:
            record = encode(env)
            await self.producer.send_and_wait(
                self.topic, record.value, key=record.key, headers=record.headers
            )


class OutboundTopic:
    """Reads the namespaced OUTBOUND topic from the beginning, keeping what it saw."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"{namespace}{OUTBOUND}"
        self.seen: list[Envelope] = []
        self.keys: list[bytes] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def _start(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await consumer.start()
            async with asyncio.timeout(30):
                while not (partitions := consumer.partitions_for_topic(self.topic)):
                    await consumer.topics()  # refreshes metadata
                    await asyncio.sleep(0.1)
            parts = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            self._consumer = consumer
        return self._consumer

    async def wait_for(
        self, done: Callable[[list[Envelope]], bool], timeout: float = 45.0
    ) -> list[Envelope]:
        consumer = await self._start()
        async with asyncio.timeout(timeout):
            while not done(self.seen):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for rec in records:
                        self.keys.append(rec.key)
                        self.seen.append(decode(rec.value, rec.headers, topic=OUTBOUND))
        return self.seen

    async def outcome_of(self, message_id: uuid.UUID, timeout: float = 45.0) -> Envelope:
        await self.wait_for(lambda seen: any(_about(e, message_id) for e in seen), timeout)
        return next(e for e in self.seen if _about(e, message_id))

    def outcomes_of(self, message_id: uuid.UUID) -> list[Envelope]:
        return [e for e in self.seen if _about(e, message_id)]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def _about(env: Envelope, message_id: uuid.UUID) -> bool:
    return getattr(env.payload, "message_id", None) == message_id
