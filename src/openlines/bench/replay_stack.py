"""`openlines bench replay`: `openlines replay dialogs` on a stack holding N dialog events.

The dialogs service runs in-process on the real broker and Postgres. Its history is written as
its own writers write it: every event appended to its event store (the relay publishes it) and
projected into the live read model by `projection.project` in the same transaction, one event
per call. Then the command itself, `openlines replay dialogs` (a subprocess, as an operator
runs it): its progress, its report (differences: none), and `--switch` while the API is polled
throughout. The raw aiokafka fetch of the same topic in the same run is the baseline.

The histories vary on purpose (delivery updates, notes with mentions, edits, deletions,
reopen, texts with tabs, newlines, backslashes, quotes and non-ASCII), so that "no
differences" covers every write the projection makes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from openlines.events.catalog import (
    DeliveryStatus,
    DialogMessageEdited,
    DialogReopened,
    Direction,
    MessageDeleted,
)
from openlines.events.envelope import EventPayload, utc_now
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS
from openlines.kit.topics import TopicNames

PER_EVENT_UP_TO = 10_000
"""Up to this many events the history is written one event per append and projection."""
REPO = Path(__file__).resolve().parents[3]
SECRET = "replay-bench-secret-of-at-least-32-bytes"
TEXTS = (
    "hello, where is my order?",
    "tab\there, a new\nline and a back\\slash",
    "quotes \"double\" and 'single'; {braces} [brackets]",
    "Добрий день! Замовлення №4521 ще не прийшло",
    "emoji 📦 and ünïcödé, ann@example.com +380 50 123 45 67",
)


def varied_history(dialog_id: uuid.UUID, i: int) -> list[EventPayload]:
    """About ten events of one dialog, with every kind of timeline write in rotation."""
    chat = f"rs{i}"
    inbound = factories.message_appended(dialog_id, TEXTS[i % len(TEXTS)], chat=chat)
    reply = factories.message_appended(
        dialog_id,
        f"answer {i}: {TEXTS[(i + 1) % len(TEXTS)]}",
        direction=Direction.OUT,
        chat=chat,
        author_id="ann",
        status=DeliveryStatus.QUEUED,
    )
    note = factories.message_appended(
        dialog_id,
        f"note for @bob about {i}",
        direction=Direction.NOTE,
        chat=chat,
        author_id="ann",
        mentions=("bob",),
    )
    events: list[EventPayload] = [
        factories.dialog_opened(dialog_id, chat=chat, name=f"Customer {i}"),
        inbound,
        factories.dialog_assigned(dialog_id, "ann"),
        reply,
        factories.message_delivery_updated(
            dialog_id, reply.message_id, DeliveryStatus.SENT, provider_message_id=f"p{i}"
        ),
    ]
    # Edits and deletions before later messages: the search words of both must agree.
    if i % 3 == 0:
        events.append(
            DialogMessageEdited(
                dialog_id=dialog_id,
                message_id=reply.message_id,
                text=f"edited answer {i}",
                actor_id="ann",
                edited_at=utc_now(),
            )
        )
    events.append(note)
    if i % 5 == 0:
        events.append(MessageDeleted(dialog_id=dialog_id, message_id=inbound.message_id))
    events.append(factories.message_appended(dialog_id, f"thanks {i}", chat=chat))
    events.append(factories.dialog_closed(dialog_id, "ann"))
    if i % 4 == 0:
        events.append(DialogReopened(dialog_id=dialog_id, actor_id="ann", operator_id="ann"))
    return events


async def fill(
    engine: Any,
    schema: str,
    names: TopicNames,
    events: int,
    *,
    per_event: bool = True,
    dialogs_per_transaction: int = 1,
) -> tuple[int, int]:
    """Write dialogs' histories as its writers do, until `events` are stored; returns
    (dialogs, events). `per_event`: one append and one `project` per event, as a command
    that decides one event writes it (the strictest comparison for a rebuild, which projects
    many at once); otherwise each dialog's history in one append and one `project`, as
    `projection.rebuild` does (faster to write at 100,000 events)."""
    from openlines.dialogs.domain import Dialog
    from openlines.dialogs.projection import project
    from openlines.kit.eventstore import EventStore

    store = EventStore(schema, "dialogs", names)
    written, dialogs = 0, 0
    base = utc_now() - timedelta(days=1)
    while written < events:
        async with engine.begin() as conn:
            for _ in range(dialogs_per_transaction):
                if written >= events:
                    break
                i = dialogs
                dialog_id = uuid.uuid4()
                history = varied_history(dialog_id, i)[: events - written]
                new = [
                    _at(payload, base + timedelta(seconds=i, milliseconds=version))
                    for version, payload in enumerate(history, start=1)
                ]
                dialog = Dialog(dialog_id)
                steps = [[e] for e in new] if per_event else [new]
                version = 0
                for step in steps:
                    envs = await store.append(conn, str(dialog_id), version, step, topic=DIALOGS)
                    for env in envs:
                        dialog.apply(env.payload, env.occurred_at)
                    await project(conn, dialog, envs)
                    version += len(envs)
                written += len(history)
                dialogs += 1
    return dialogs, written


def _at(payload: EventPayload, at: Any) -> Any:
    from openlines.kit.eventstore import NewEvent

    return NewEvent(payload, occurred_at=at)


@dataclass
class CommandRun:
    returncode: int
    output: str
    seconds: float


async def openlines_command(*argv: str, env: dict[str, str], timeout: float) -> CommandRun:
    """`openlines ARGV...` as a subprocess (its own interpreter, as an operator runs it)."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        *argv,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return CommandRun(proc.returncode, out.decode(), time.perf_counter() - started)


@dataclass
class StackReplay:
    dialogs: int
    events: int
    fill_seconds: float
    compare: CommandRun
    switch: CommandRun
    raw_fetch_rate: float
    statuses: dict[int, int] = field(default_factory=dict)
    """HTTP status -> count, of the requests made while `--switch` ran."""
    requests_during_switch: int = 0

    @property
    def rebuild_rate(self) -> float:
        """events/s as the command reports it for the rebuild ("... events/s)")."""
        for line in self.compare.output.splitlines():
            if line.startswith("rebuilt ") and "events/s" in line:
                return float(line.rsplit("(", 1)[1].split()[0].replace(",", ""))
        return 0.0


@asynccontextmanager
async def dialogs_service(
    database_url: str, schema: str, bootstrap: str
) -> AsyncIterator[tuple[Any, Any]]:
    from openlines.dialogs.app import build_service
    from openlines.dialogs.settings import DialogsSettings
    from openlines.kit.testing.service import isolated_settings, serving

    settings = DialogsSettings(
        **isolated_settings(database_url, schema, bootstrap),
        lines_file=str(REPO / "config" / "demo.yaml"),
        jwt_secret=SECRET,
        log_level="WARNING",
    )
    runtime = build_service(settings)
    async with serving(runtime, "replay-stack") as served:
        yield runtime, served


async def replay_on_a_stack(
    database_url: str,
    bootstrap: str,
    events: int,
    *,
    timeout: float = 600.0,
    say: Callable[[str], None] = lambda _: None,
) -> StackReplay:
    from openlines.bench.infra import Infra
    from openlines.bench.kit import _raw_fetch_rate
    from openlines.kit.testing.auth import bearer
    from openlines.kit.testing.waiting import eventually

    schema = f"rs_{uuid.uuid4().hex[:8]}"
    async with dialogs_service(database_url, schema, bootstrap) as (runtime, served):
        settings = runtime.settings
        names = TopicNames(settings.topic_namespace)
        say(f"writing {events:,} dialog events through the event store and the projection")
        started = time.perf_counter()
        dialogs, written = await fill(
            runtime.engine,
            schema,
            names,
            events,
            per_event=events <= PER_EVENT_UP_TO,
            dialogs_per_transaction=1 if events <= PER_EVENT_UP_TO else 25,
        )
        fill_seconds = time.perf_counter() - started

        async def relayed() -> bool:
            async with runtime.engine.connect() as conn:
                return await conn.scalar(text("SELECT count(*) FROM outbox")) == 0

        await eventually(relayed, timeout=timeout, what="the outbox relayed")
        raw = await _raw_fetch_rate(Infra(bootstrap, database_url), names.physical(DIALOGS))
        cli = (
            "--database-url",
            database_url,
            "--bootstrap",
            bootstrap,
            "--namespace",
            settings.topic_namespace,
            "--schema",
            schema,
        )
        say("openlines replay dialogs (compare)")
        compare = await openlines_command("replay", "dialogs", *cli, env={}, timeout=timeout)
        say(compare.output)

        # The switch while the API is read and a customer writes.
        first = await _scalar(runtime, "SELECT id FROM dialogs ORDER BY created_at LIMIT 1")
        sue = bearer("sue", "supervisor", secret=SECRET)
        stop = asyncio.Event()
        statuses: dict[int, int] = {}

        async def poll() -> None:
            while not stop.is_set():
                for path in ("/api/v1/dialogs?tab=all", f"/api/v1/dialogs/{first}/timeline"):
                    async with served.http.get(served.url + path, headers=sue) as r:
                        statuses[r.status] = statuses.get(r.status, 0) + 1

        poller = asyncio.create_task(poll())
        try:
            await eventually(
                lambda: asyncio.sleep(0, result=sum(statuses.values()) > 10),
                timeout=60,
                what="the API answering",
            )
            say("openlines replay dialogs --switch, the API polled throughout")
            switch = await openlines_command(
                "replay", "dialogs", "--switch", *cli, env={}, timeout=timeout
            )
            seen = sum(statuses.values())
            # The API keeps answering after the switch too.
            await eventually(
                lambda: asyncio.sleep(0, result=sum(statuses.values()) > seen + 10),
                timeout=60,
                what="the API answering after the switch",
            )
        finally:
            stop.set()
            await poller
        say(switch.output)
        return StackReplay(
            dialogs=dialogs,
            events=written,
            fill_seconds=fill_seconds,
            compare=compare,
            switch=switch,
            raw_fetch_rate=raw,
            statuses=dict(statuses),
            requests_during_switch=seen,
        )


async def _scalar(runtime: Any, sql: str) -> Any:
    async with runtime.engine.connect() as conn:
        return await conn.scalar(text(sql))
