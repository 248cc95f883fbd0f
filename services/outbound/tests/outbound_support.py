"""Outbound test helpers: the sandbox provider, events to publish, the OUTBOUND reader."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from openlines.events.catalog import DeliveryStatus, Direction
from openlines.events.codec import decode
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS, OUTBOUND
from openlines.kit.embedded import reserve_port
from openlines.kit.http.app import create_app
from openlines.kit.testing.publish import Publisher
from openlines.stack.sandbox import (
    FAULT_DESCRIPTIONS,
    ChannelMailbox,
    Fault,
    Sandbox,
    SandboxSettings,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHANNEL = "tg-test"
TOKEN = "111:test-token"
SEND_PATH = f"/sandbox/{CHANNEL}/bot{TOKEN}/sendMessage"
FIRST_MESSAGE_ID = 1000  # the provider's first message id on CHANNEL

# Runs outbound (with these settings overrides) until the reply it is given has its one
# outcome on OUTBOUND, and returns that outcome (the `send_one` fixture).
SendOne = Callable[..., Awaitable[Envelope]]


class SandboxServer:
    """The project's sandbox provider (openlines.stack.sandbox) on a fixed 127.0.0.1 port that
    can be stopped and started again (a new app each time, the same mailboxes).

    It records every request it got (`requests`: path, JSON body, headers, arrival time),
    answered or not; `texts()` is what it accepted, as the sandbox's own record shows.
    """

    def __init__(self) -> None:
        self.sandbox = Sandbox()
        self.sandbox.mailboxes[CHANNEL] = ChannelMailbox(_ids=itertools.count(FIRST_MESSAGE_ID))
        self.port = reserve_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = create_app(SandboxSettings(log_json=False))
        app.middlewares.append(self._record)
        self.sandbox.install(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/sendMessage"):
            self.requests.append(
                {
                    "path": request.path,
                    "json": await request.json(),
                    "headers": dict(request.headers),
                    "at": time.monotonic(),
                }
            )
            self.received.set()
        return await handler(request)

    async def fault(self, **fault: Any) -> None:
        """Queue a fault through the sandbox's own control API."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/sandbox/{CHANNEL}/faults", json=fault) as resp,
        ):
            assert resp.status == 200, await resp.text()

    def texts(self) -> list[str]:
        return [m.text for m in self.sandbox.mailbox(CHANNEL).sent]

    def rejected(self) -> int:
        return self.sandbox.mailbox(CHANNEL).rejected


@dataclass
class Reply:
    """A scripted provider answer; `hang` never answers (until the test ends)."""

    status: int = 200
    description: str | None = None
    retry_after: int = 1
    hang: bool = False


def ok() -> Reply:
    return Reply(200)


def error(status: int, description: str, retry_after: int | None = None) -> Reply:
    # The sandbox answers each status with Telegram's own description: say which one.
    expected = FAULT_DESCRIPTIONS[status].format(retry_after=retry_after)
    assert description == expected, f"the sandbox answers {status} with {expected!r}"
    return Reply(status, description, retry_after or 1)


class Provider:
    """The channel's provider as the send tests see it: the sandbox answering from a script
    (then 200), and every request it got. `url` is the base of the channels' `api_base`."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = f"{server.url}/sandbox"
        self.requests = server.requests
        self.received = server.received

    @property
    def script(self) -> list[Reply]:
        raise AttributeError("the script is write-only: it is queued as sandbox faults")

    @script.setter
    def script(self, replies: list[Reply]) -> None:
        faults = self.server.sandbox.mailbox(CHANNEL).faults
        faults.clear()
        for reply in replies:
            # A hang: the sandbox takes the message and answers long after the test is over.
            delay = 600.0 if reply.hang else 0.0
            faults.append(Fault(reply.status, reply.retry_after, delay_seconds=delay))

    def texts(self) -> list[str]:
        """The text of every request, answered or not."""
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
    message = factories.message_appended(
        dialog_id,
        text,
        direction=direction,
        chat=chat,
        channel_id=channel,
        author_id="ann" if direction in (Direction.OUT, Direction.NOTE) else None,
        reply_to=reply_to,
        external_message_id=external_message_id,
        status=DeliveryStatus.QUEUED if direction is Direction.OUT else None,
    )
    return factories.envelope(message, producer="dialogs")


class Dialogs:
    """Publishes to the namespaced DIALOGS topic, as the dialogs service's relay would."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.producer = publisher.producer
        self.topic = f"{publisher.namespace}{DIALOGS}"

    async def publish(self, *envelopes: Envelope) -> None:
        await self.publisher.publish(DIALOGS, *envelopes)


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
