"""crm-link test support: a lines file, a running crm-link, a CRM topic reader, dialog events.

The tests play the dialogs service: they publish DIALOGS events and read what crm-link emits
on CRM, on the real broker and Postgres.
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
from sqlalchemy import select

from openlines.crm_link.app import build_service
from openlines.crm_link.settings import CrmLinkSettings
from openlines.crm_link.tables import dialogs
from openlines.events.catalog import (
    AssignedBy,
    ChannelType,
    Customer,
    DialogAssigned,
    DialogOpened,
    Direction,
    MessageAppended,
)
from openlines.events.codec import encode
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.topics import CRM, DIALOGS
from openlines.kit.http.auth import issue_token
from openlines.kit.kafka.producer import create_producer
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.kafka import TopicReader
from openlines.kit.testing.service import isolated_settings, running

JWT_SECRET = "crm-link-tests-secret-of-at-least-32-bytes"

# demo creates leads automatically (two telegram channels); manual does not.
LINES_YAML = """
operators:
  - {id: ann, role: operator}
  - {id: bob, role: operator}
  - {id: sue, role: supervisor}
lines:
  - id: demo
    channels: [{id: tg-demo, type: telegram}, {id: tg-other, type: telegram}]
    operators: [ann]
    auto_lead: true
  - id: manual
    channels: [{id: tg-manual, type: telegram}, {id: wa-manual, type: whatsapp}]
    operators: [bob]
    auto_lead: false
"""

LINE_OF = {"tg-demo": "demo", "tg-other": "demo", "tg-manual": "manual", "wa-manual": "manual"}


def write_lines(directory: Path) -> Path:
    path = directory / "lines.yaml"
    path.write_text(LINES_YAML)
    return path


def crm_settings(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> CrmLinkSettings:
    return CrmLinkSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        lines_file=str(lines_file),
        jwt_secret=JWT_SECRET,
    )


def opened(
    dialog_id: uuid.UUID, user: str, channel_id: str = "tg-demo", name: str = "Carla"
) -> DialogOpened:
    channel_type = ChannelType.WHATSAPP if channel_id.startswith("wa-") else ChannelType.TELEGRAM
    return DialogOpened(
        dialog_id=dialog_id,
        line_id=LINE_OF[channel_id],
        channel_id=channel_id,
        channel_type=channel_type,
        conversation_key=f"{channel_id}:{user}",
        customer=Customer(name=name, external_id=user),
        external_user_id=user,
        external_chat_id=user,
        title=f"{name} ({channel_id})",
    )


def assigned(dialog_id: uuid.UUID, operator_id: str, channel_id: str = "tg-demo") -> DialogAssigned:
    return DialogAssigned(
        dialog_id=dialog_id,
        operator_id=operator_id,
        assigned_by=AssignedBy.SUPERVISOR,
        actor_id="sue",
        line_id=LINE_OF[channel_id],
    )


def message(
    dialog_id: uuid.UUID,
    text: str,
    at: datetime,
    direction: Direction = Direction.IN,
    channel_id: str = "tg-demo",
) -> MessageAppended:
    return MessageAppended(
        dialog_id=dialog_id,
        message_id=uuid.uuid4(),
        direction=direction,
        text=text,
        channel_id=channel_id,
        conversation_key=f"{channel_id}:x",
        sent_at=at,
    )


@dataclass
class Crm:
    url: str
    runtime: ServiceRuntime
    settings: CrmLinkSettings
    http: aiohttp.ClientSession
    producer: AIOKafkaProducer
    crm_events: TopicReader

    @property
    def dialogs_topic(self) -> str:
        return f"{self.settings.topic_namespace}{DIALOGS}"

    async def publish(self, payload: EventPayload, occurred_at: datetime | None = None) -> Envelope:
        dialog_id: uuid.UUID = payload.dialog_id  # type: ignore[attr-defined]
        env = Envelope.new(
            payload,
            stream_id=str(dialog_id),
            stream_version=1,
            producer="dialogs",
            occurred_at=occurred_at,
        )
        await self.send(env)
        return env

    async def send(self, env: Envelope) -> None:
        record = encode(env)
        await self.producer.send_and_wait(
            self.dialogs_topic, record.value, key=record.key, headers=record.headers
        )

    async def caught_up(self, dialog_id: uuid.UUID, channel_id: str = "tg-demo") -> None:
        """Wait until crm-link processed everything published so far for this dialog: a marker
        message on the same key (same partition) comes after it and shows in the read model."""
        marker = f"marker {uuid.uuid4()}"
        await self.publish(message(dialog_id, marker, now(), channel_id=channel_id))
        async with asyncio.timeout(30):
            while True:
                async with self.runtime.engine.connect() as conn:
                    text = (
                        await conn.execute(
                            select(dialogs.c.last_message["text"].astext).where(
                                dialogs.c.dialog_id == dialog_id
                            )
                        )
                    ).scalar_one_or_none()
                if text == marker:
                    return
                await asyncio.sleep(0.05)

    def auth(
        self, operator_id: str, role: str = "operator", lines: list[str] | None = None
    ) -> dict[str, str]:
        token = issue_token(operator_id, [role], secret=JWT_SECRET, lines=lines)
        return {"Authorization": f"Bearer {token}"}

    async def get(
        self, path: str, who: str, role: str = "operator", lines: list[str] | None = None
    ) -> tuple[int, Any]:
        headers = self.auth(who, role, lines)
        async with self.http.get(f"{self.url}{path}", headers=headers) as resp:
            return resp.status, await resp.json()

    async def post(
        self, path: str, who: str, role: str = "operator", body: Any = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        async with self.http.post(
            f"{self.url}{path}", headers=self.auth(who, role), **kwargs
        ) as resp:
            return resp.status, await resp.json()


@asynccontextmanager
async def crm_running(settings: CrmLinkSettings) -> AsyncIterator[Crm]:
    runtime = build_service(settings)
    producer = create_producer(settings.kafka_bootstrap, client_id="crm-test")
    async with running(runtime) as url, aiohttp.ClientSession() as http:
        await producer.start()
        try:
            reader = TopicReader(settings.kafka_bootstrap, f"{settings.topic_namespace}{CRM}", CRM)
            async with reader.running():
                yield Crm(url, runtime, settings, http, producer, reader)
        finally:
            await producer.stop()


def now() -> datetime:
    return datetime.now(UTC)
