"""Routing test support: a lines file, a running routing service, topic readers, events.

The tests play the dialogs service: they publish DIALOGS events and read the AssignDialog
commands routing sends on DIALOG_COMMANDS, all on the real broker and Postgres.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from openlines.events.catalog import (
    AssignDialog,
    AssignedBy,
    ChannelType,
    CloseReason,
    Customer,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
)
from openlines.events.codec import encode
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.topics import DIALOG_COMMANDS, DIALOGS, ROUTING
from openlines.kit.http.auth import issue_token
from openlines.kit.kafka.producer import create_producer
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.kafka import TopicReader
from openlines.kit.testing.service import isolated_settings, running
from openlines.routing.app import build_service
from openlines.routing.settings import RoutingSettings

# demo: ann and bob (2 dialogs each); vip: carl alone (1 dialog); sue supervises.
LINES_YAML = """
operators:
  - {id: ann, role: operator, max_dialogs: 2}
  - {id: bob, role: operator, max_dialogs: 2}
  - {id: carl, role: operator, max_dialogs: 1}
  - {id: sue, role: supervisor, max_dialogs: 5}
lines:
  - id: demo
    channels: [{id: tg-demo, type: telegram}]
    operators: [ann, bob]
    routing: round_robin
  - id: vip
    channels: [{id: tg-vip, type: telegram}]
    operators: [carl]
    routing: round_robin
"""


JWT_SECRET = "routing-tests-secret-of-at-least-32-bytes"


def write_lines(directory: Path) -> Path:
    path = directory / "lines.yaml"
    path.write_text(LINES_YAML)
    return path


def routing_settings(
    kafka_bootstrap: str,
    database_url: str,
    db_schema: str,
    lines_file: Path,
    **overrides: Any,
) -> RoutingSettings:
    return RoutingSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        lines_file=str(lines_file),
        jwt_secret=JWT_SECRET,
        **overrides,
    )


# -- events the tests publish as if they were the dialogs service ------------------------------


def opened(dialog_id: uuid.UUID, line_id: str = "demo") -> DialogOpened:
    return DialogOpened(
        dialog_id=dialog_id,
        line_id=line_id,
        channel_id=f"tg-{line_id}",
        channel_type=ChannelType.TELEGRAM,
        conversation_key=f"tg-{line_id}:{dialog_id.int % 10**6}",
        customer=Customer(name="Carla", external_id=str(dialog_id.int % 10**6)),
        external_user_id=str(dialog_id.int % 10**6),
        title="Carla",
    )


def assigned(
    dialog_id: uuid.UUID,
    operator_id: str,
    by: AssignedBy = AssignedBy.ROUTING,
    line_id: str = "demo",
) -> DialogAssigned:
    return DialogAssigned(
        dialog_id=dialog_id,
        operator_id=operator_id,
        assigned_by=by,
        actor_id=None if by is AssignedBy.ROUTING else operator_id,
        strategy="round_robin" if by is AssignedBy.ROUTING else None,
        line_id=line_id,
    )


def closed(dialog_id: uuid.UUID, operator_id: str | None, line_id: str = "demo") -> DialogClosed:
    return DialogClosed(
        dialog_id=dialog_id,
        reason=CloseReason.OPERATOR,
        actor_id=operator_id,
        line_id=line_id,
        operator_id=operator_id,
    )


class DialogsStream:
    """Publishes DIALOGS events with per-dialog stream versions, keyed by dialog id."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.versions: dict[uuid.UUID, int] = {}

    async def publish(
        self, payload: EventPayload, *, occurred_at: datetime | None = None
    ) -> Envelope:
        dialog_id: uuid.UUID = payload.dialog_id  # type: ignore[attr-defined]
        version = self.versions.get(dialog_id, 0) + 1
        self.versions[dialog_id] = version
        env = Envelope.new(
            payload,
            stream_id=str(dialog_id),
            stream_version=version,
            producer="dialogs",
            occurred_at=occurred_at,
        )
        await self.send(env)
        return env

    async def send(self, env: Envelope) -> None:
        record = encode(env)
        await self.producer.send_and_wait(
            self.topic, record.value, key=record.key, headers=record.headers
        )


# -- reading what routing emitted --------------------------------------------------------------


class CommandReader(TopicReader):
    """What routing emitted, with a shortcut for its commands."""

    async def commands(self, count: int, timeout: float = 30.0) -> list[AssignDialog]:
        """The first `count` AssignDialog commands (fails if they do not arrive)."""
        await self.wait_for(
            lambda r: len(r.of(AssignDialog)) >= count, f"{count} AssignDialog", timeout
        )
        return list(self.of(AssignDialog)[:count])


# -- the harness ---------------------------------------------------------------------------------


@dataclass
class Routing:
    url: str
    runtime: ServiceRuntime
    settings: RoutingSettings
    http: aiohttp.ClientSession
    dialogs: DialogsStream
    commands: CommandReader
    routing_events: TopicReader

    def auth(self, operator_id: str, role: str = "operator") -> dict[str, str]:
        token = issue_token(operator_id, [role], secret=self.settings.jwt_secret)
        return {"Authorization": f"Bearer {token}"}

    async def presence(
        self, operator_id: str, status: str, actor: str | None = None, role: str = "operator"
    ) -> tuple[int, Any]:
        async with self.http.put(
            f"{self.url}/api/v1/operators/{operator_id}/presence",
            json={"status": status},
            headers=self.auth(actor or operator_id, role),
        ) as resp:
            return resp.status, await resp.json()

    async def queue(self, line_id: str = "demo") -> dict[str, Any]:
        async with self.http.get(
            f"{self.url}/api/v1/queues", headers=self.auth("sue", "supervisor")
        ) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        return next(q for q in body["lines"] if q["line_id"] == line_id)

    async def wait_queue(self, waiting: int, line_id: str = "demo") -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                entry = await self.queue(line_id)
                if entry["waiting"] == waiting:
                    return entry
                await asyncio.sleep(0.05)

    async def load(self) -> dict[str, tuple[int, int, int]]:
        """operator -> (active, reserved, max_dialogs), straight from routing's table."""
        async with self.runtime.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT operator_id, active, reserved, max_dialogs FROM operators")
            )
            return {r.operator_id: (r.active, r.reserved, r.max_dialogs) for r in rows}

    async def wait_load(self, operator_id: str, expected: tuple[int, int, int]) -> None:
        try:
            async with asyncio.timeout(30):
                while (await self.load())[operator_id] != expected:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{operator_id}: {(await self.load())[operator_id]}") from None


@asynccontextmanager
async def routing_running(settings: RoutingSettings) -> AsyncIterator[Routing]:
    runtime = build_service(settings)
    ns = settings.topic_namespace
    bootstrap = settings.kafka_bootstrap
    producer = create_producer(bootstrap, client_id="routing-test")
    async with running(runtime) as url, aiohttp.ClientSession() as http:
        await producer.start()
        try:
            commands = CommandReader(bootstrap, f"{ns}{DIALOG_COMMANDS}", DIALOG_COMMANDS)
            events = TopicReader(bootstrap, f"{ns}{ROUTING}", ROUTING)
            async with commands.running(), events.running():
                yield Routing(
                    url,
                    runtime,
                    settings,
                    http,
                    DialogsStream(producer, f"{ns}{DIALOGS}"),
                    commands,
                    events,
                )
        finally:
            await producer.stop()


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def now() -> datetime:
    return datetime.now(UTC)
