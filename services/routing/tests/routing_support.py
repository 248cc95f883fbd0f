"""Routing test support: a lines file, a running routing service, topic readers, events.

The tests play the dialogs service: they publish DIALOGS events and read the AssignDialog
commands routing sends on DIALOG_COMMANDS, all on the real broker and Postgres.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from openlines.events.catalog import (
    AssignDialog,
    AssignedBy,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.events.topics import DIALOG_COMMANDS, DIALOGS, ROUTING
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing import lines
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.kafka import TopicReader
from openlines.kit.testing.publish import Publisher
from openlines.kit.testing.service import isolated_settings, serving
from openlines.kit.testing.waiting import eventually
from openlines.kit.timers import Clock, wall_clock
from openlines.routing.app import build_service
from openlines.routing.settings import RoutingSettings


def lines_config(
    operators: Mapping[str, int],
    lines: Mapping[str, Sequence[str]],
    supervisors: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A lines configuration: people by their dialog limit; round-robin lines by their
    operators, each line with one telegram channel `tg-<line>`."""
    people = [("operator", operators), ("supervisor", supervisors or {})]
    return {
        "operators": [
            {"id": who, "role": role, "max_dialogs": limit}
            for role, limits in people
            for who, limit in limits.items()
        ],
        "lines": [
            {
                "id": line,
                "channels": [{"id": f"tg-{line}", "type": "telegram"}],
                "operators": list(members),
                "routing": "round_robin",
            }
            for line, members in lines.items()
        ],
    }


# demo: ann and bob (2 dialogs each); vip: carl alone (1 dialog); sue supervises.
LINES = lines_config(
    {"ann": 2, "bob": 2, "carl": 1}, {"demo": ["ann", "bob"], "vip": ["carl"]}, {"sue": 5}
)


JWT_SECRET = "routing-tests-secret-of-at-least-32-bytes"


def write_lines(directory: Path) -> Path:
    return lines.write_lines(directory, LINES)


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
    chat = str(dialog_id.int % 10**6)
    return factories.dialog_opened(
        dialog_id, chat=chat, channel_id=f"tg-{line_id}", line_id=line_id
    )


def assigned(
    dialog_id: uuid.UUID,
    operator_id: str,
    by: AssignedBy = AssignedBy.ROUTING,
    line_id: str = "demo",
) -> DialogAssigned:
    by_routing = by is AssignedBy.ROUTING
    return factories.dialog_assigned(
        dialog_id,
        operator_id,
        by=by,
        line_id=line_id,
        actor_id=None if by_routing else operator_id,
        strategy="round_robin" if by_routing else None,
    )


def closed(dialog_id: uuid.UUID, operator_id: str | None, line_id: str = "demo") -> DialogClosed:
    return factories.dialog_closed(dialog_id, operator_id, line_id=line_id, actor_id=operator_id)


class DialogsStream:
    """Publishes DIALOGS events with per-dialog stream versions, keyed by dialog id."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.stream = factories.DialogStream()

    async def publish(
        self, payload: EventPayload, *, occurred_at: datetime | None = None
    ) -> Envelope:
        env = self.stream.envelope(payload, occurred_at=occurred_at)
        await self.send(env)
        return env

    async def send(self, env: Envelope) -> None:
        await self.publisher.publish(DIALOGS, env)


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
        return bearer(operator_id, role, secret=self.settings.jwt_secret)

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
        async def entry() -> dict[str, Any] | None:
            found = await self.queue(line_id)
            return found if found["waiting"] == waiting else None

        return await eventually(entry, what=f"{waiting} waiting on {line_id}")

    async def load(self) -> dict[str, tuple[int, int, int]]:
        """operator -> (active, reserved, max_dialogs), straight from routing's table."""
        async with self.runtime.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT operator_id, active, reserved, max_dialogs FROM operators")
            )
            return {r.operator_id: (r.active, r.reserved, r.max_dialogs) for r in rows}

    async def wait_load(self, operator_id: str, expected: tuple[int, int, int]) -> None:
        async def reached() -> bool:
            return (await self.load())[operator_id] == expected

        try:
            await eventually(reached)
        except AssertionError:
            raise AssertionError(f"{operator_id}: {(await self.load())[operator_id]}") from None


@asynccontextmanager
async def routing_running(
    settings: RoutingSettings, clock: Clock = wall_clock
) -> AsyncIterator[Routing]:
    runtime = build_service(settings, clock=clock)
    ns = settings.topic_namespace
    bootstrap = settings.kafka_bootstrap
    commands = CommandReader(bootstrap, f"{ns}{DIALOG_COMMANDS}", DIALOG_COMMANDS)
    events = TopicReader(bootstrap, f"{ns}{ROUTING}", ROUTING)
    async with serving(runtime, "routing-test") as served, commands.running(), events.running():
        yield Routing(
            served.url,
            runtime,
            settings,
            served.http,
            DialogsStream(served.publisher),
            commands,
            events,
        )


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def now() -> datetime:
    return datetime.now(UTC)
