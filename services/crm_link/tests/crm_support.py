"""crm-link test support: a lines file, a running crm-link, a CRM topic reader, dialog events.

The tests play the dialogs service: they publish DIALOGS events and read what crm-link emits
on CRM, on the real broker and Postgres.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from openlines.crm_link.app import build_service
from openlines.crm_link.settings import CrmLinkSettings
from openlines.crm_link.tables import dialogs
from openlines.events.catalog import (
    AssignedBy,
    DialogAssigned,
    DialogOpened,
    Direction,
    MessageAppended,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.events.topics import CRM, DIALOGS
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing import lines
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.kafka import TopicReader
from openlines.kit.testing.publish import Publisher
from openlines.kit.testing.service import isolated_settings, serving
from openlines.kit.testing.waiting import eventually, outbox_drained

JWT_SECRET = "crm-link-tests-secret-of-at-least-32-bytes"

# demo creates leads automatically (two telegram channels); manual does not.
# CRM rights: operators own, supervisors all; cara (on demo) has none, dan (on demo) all.
LINES_YAML = """
crm: {operator: own, supervisor: all, admin: all}
operators:
  - {id: ann, role: operator}
  - {id: bob, role: operator}
  - {id: sue, role: supervisor}
  - {id: cara, role: operator, crm: none}
  - {id: dan, role: operator, crm: all}
lines:
  - id: demo
    channels: [{id: tg-demo, type: telegram}, {id: tg-other, type: telegram}]
    operators: [ann, cara, dan]
    auto_lead: true
  - id: manual
    channels: [{id: tg-manual, type: telegram}, {id: wa-manual, type: whatsapp}]
    operators: [bob]
    auto_lead: false
"""

LINE_OF = {"tg-demo": "demo", "tg-other": "demo", "tg-manual": "manual", "wa-manual": "manual"}


def write_lines(directory: Path) -> Path:
    return lines.write_lines(directory, LINES_YAML)


def crm_settings(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> CrmLinkSettings:
    return CrmLinkSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        lines_file=str(lines_file),
        jwt_secret=JWT_SECRET,
    )


def opened(
    dialog_id: uuid.UUID,
    user: str,
    channel_id: str = "tg-demo",
    name: str = "Carla",
    phone: str | None = None,
) -> DialogOpened:
    event = factories.dialog_opened(
        dialog_id,
        chat=user,
        channel_id=channel_id,
        line_id=LINE_OF[channel_id],
        name=name,
        title=f"{name} ({channel_id})",
        external_chat_id=user,
    )
    if phone is None:
        return event
    customer = event.customer.model_copy(update={"phone": phone})
    return event.model_copy(update={"customer": customer})


def assigned(dialog_id: uuid.UUID, operator_id: str, channel_id: str = "tg-demo") -> DialogAssigned:
    return factories.dialog_assigned(
        dialog_id,
        operator_id,
        by=AssignedBy.SUPERVISOR,
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
    return factories.message_appended(
        dialog_id, text, direction=direction, chat="x", channel_id=channel_id, sent_at=at
    )


@dataclass
class Crm:
    url: str
    runtime: ServiceRuntime
    settings: CrmLinkSettings
    http: aiohttp.ClientSession
    dialogs: Publisher
    crm_events: TopicReader

    async def publish(self, payload: EventPayload, occurred_at: datetime | None = None) -> Envelope:
        env = factories.envelope(payload, producer="dialogs", occurred_at=occurred_at)
        await self.send(env)
        return env

    async def send(self, env: Envelope) -> None:
        await self.dialogs.publish(DIALOGS, env)

    async def caught_up(self, dialog_id: uuid.UUID, channel_id: str = "tg-demo") -> None:
        """Wait until crm-link processed everything published so far for this dialog: a marker
        message on the same key (same partition) comes after it and shows in the read model."""
        marker = f"marker {uuid.uuid4()}"
        await self.publish(message(dialog_id, marker, now(), channel_id=channel_id))

        async def marker_shows() -> bool:
            async with self.runtime.engine.connect() as conn:
                last = select(dialogs.c.last_message["text"].astext)
                found = await conn.execute(last.where(dialogs.c.dialog_id == dialog_id))
                return found.scalar_one_or_none() == marker

        await eventually(marker_shows, what=f"marker of dialog {dialog_id}")

    async def published_all(self) -> None:
        """The marker that crm-link emitted nothing more: its outbox is empty (the relay
        deletes a row once the broker has it) and the CRM reader has read to the topic's end."""
        engine = self.runtime.engine
        await eventually(lambda: outbox_drained(engine), what="crm-link's outbox drained")
        await self.crm_events.read_to_end()

    def auth(
        self, operator_id: str, role: str = "operator", lines: list[str] | None = None
    ) -> dict[str, str]:
        return bearer(operator_id, role, secret=JWT_SECRET, lines=lines)

    async def get(
        self, path: str, who: str, role: str = "operator", lines: list[str] | None = None
    ) -> tuple[int, Any]:
        headers = self.auth(who, role, lines)
        async with self.http.get(
            f"{self.url}{path}", headers=headers, allow_redirects=False
        ) as resp:
            return resp.status, await resp.json()

    async def post(
        self, path: str, who: str, role: str = "operator", body: Any = None
    ) -> tuple[int, Any]:
        return await self.send_json("POST", path, who, role, body)

    async def patch(
        self, path: str, who: str, role: str = "operator", body: Any = None
    ) -> tuple[int, Any]:
        return await self.send_json("PATCH", path, who, role, body)

    async def send_json(
        self, method: str, path: str, who: str, role: str, body: Any
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        async with self.http.request(
            method, f"{self.url}{path}", headers=self.auth(who, role), **kwargs
        ) as resp:
            return resp.status, await resp.json()


@asynccontextmanager
async def crm_running(settings: CrmLinkSettings) -> AsyncIterator[Crm]:
    runtime = build_service(settings)
    bootstrap, ns = settings.kafka_bootstrap, settings.topic_namespace
    reader = TopicReader(bootstrap, f"{ns}{CRM}", CRM)
    async with serving(runtime, "crm-test") as served, reader.running():
        yield Crm(served.url, runtime, settings, served.http, served.publisher, reader)


def now() -> datetime:
    return datetime.now(UTC)
