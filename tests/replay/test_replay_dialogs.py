"""`openlines replay dialogs` against the dialogs service running in-process on the real broker
and Postgres: the copy built from the topics equals the live read model, and a switch while
the API is polled and customers keep writing loses no write and fails no request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from openlines.dialogs.app import build_service
from openlines.dialogs.handlers import opened_dialog_id
from openlines.dialogs.settings import DialogsSettings
from openlines.events.testing import factories
from openlines.events.topics import INBOUND
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.service import Served, isolated_settings, serving
from openlines.kit.testing.waiting import eventually
from openlines.kit.topics import TopicNames
from openlines.replay.models import read_models
from openlines.replay.progress import EventProgress
from openlines.replay.rebuild import compare, drop_copy, rebuild, switch

REPO = Path(__file__).resolve().parents[2]
SECRET = "replay-test-secret-of-at-least-32-bytes"


@pytest.fixture
async def dialogs(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> AsyncIterator[tuple[ServiceRuntime, Served]]:
    settings = DialogsSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        lines_file=str(REPO / "config" / "demo.yaml"),
        jwt_secret=SECRET,
        log_level="WARNING",
    )
    runtime = build_service(settings)
    async with serving(runtime, "replay-test") as served:
        yield runtime, served


async def customer_writes(served: Served, chat: str, text_: str) -> uuid.UUID:
    message = factories.message_received(chat, text_, channel_id="tg-demo")
    env = factories.envelope(
        message,
        stream_id=message.conversation_key,
        stream_version=0,
        event_id=factories.received_event_id(message),
    )
    await served.publisher.publish(INBOUND, env)
    return opened_dialog_id(env.event_id)


async def relayed(runtime: ServiceRuntime) -> bool:
    async with runtime.engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM outbox")) == 0


async def all_projected(runtime: ServiceRuntime, dialogs: int) -> bool:
    async with runtime.engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM dialogs")) == dialogs


async def test_a_rebuild_from_the_topics_equals_the_live_model_and_a_switch_fails_no_request(
    dialogs: tuple[ServiceRuntime, Served],
) -> None:
    runtime, served = dialogs
    settings = runtime.settings
    names = TopicNames(settings.topic_namespace)
    sue = bearer("sue", "supervisor", secret=SECRET)
    opened = []
    for i in range(12):
        opened.append(await customer_writes(served, f"77{i:02}", "hello"))
        await customer_writes(served, f"77{i:02}", "where is my order?")
    first = opened[0]
    await eventually(lambda: all_projected(runtime, 12), timeout=60)
    async with served.http.post(
        f"{served.url}/api/v1/dialogs/{first}/take",
        headers=bearer("ann", "operator", secret=SECRET),
    ) as r:
        assert r.status == 200, await r.text()
    await eventually(lambda: relayed(runtime), timeout=60)

    model = read_models()["dialogs"]
    seen: list[tuple[str, int, int]] = []

    def progress(label: str, p: object) -> None:
        seen.append((label, p.done, p.total))  # type: ignore[attr-defined]

    built = await rebuild(
        model,
        database_url=settings.database_url,
        bootstrap=settings.kafka_bootstrap,
        names=names,
        live_schema=settings.db_schema,
        progress=progress,
    )
    assert built.events >= 12 * 3  # opened, queued/appended...: every dialog event
    assert seen and seen[-1][1] == seen[-1][2]  # the progress reached its total
    rows = await compare(runtime.engine, built)
    assert {name for name, _, _ in rows} == set(model.tables)
    assert [(n, live) for n, live, new in rows if live != new] == []
    assert all(live.rows > 0 for _, live, _ in rows)
    await drop_copy(runtime.engine, built.new_schema)

    # A switch while the API is read and customers write: no failed request, no lost write.
    built = await rebuild(
        model,
        database_url=settings.database_url,
        bootstrap=settings.kafka_bootstrap,
        names=names,
        live_schema=settings.db_schema,
    )
    stop = asyncio.Event()
    statuses: list[int] = []

    async def poll() -> None:
        while not stop.is_set():
            for path in ("/api/v1/dialogs?tab=all", f"/api/v1/dialogs/{first}/timeline"):
                async with served.http.get(served.url + path, headers=sue) as r:
                    statuses.append(r.status)

    written: list[uuid.UUID] = []

    async def write() -> None:
        while not stop.is_set():
            written.append(await customer_writes(served, f"88{len(written):02}", "during"))
            await asyncio.sleep(0.05)

    pollers = [asyncio.create_task(poll()), asyncio.create_task(write())]
    try:
        await eventually(lambda: asyncio.sleep(0, result=len(statuses) > 10), timeout=30)
        before = len(statuses)
        done = await switch(
            built,
            database_url=settings.database_url,
            bootstrap=settings.kafka_bootstrap,
            names=names,
        )
        during = len(statuses) - before
        await eventually(lambda: asyncio.sleep(0, result=len(statuses) > before + 20), timeout=30)
    finally:
        stop.set()
        await asyncio.gather(*pollers)
    print(f"switch: {done}, {during} requests during it")
    assert statuses and set(statuses) == {200}
    assert done.locked_seconds < 30

    async with runtime.engine.connect() as conn:
        schemas = set(
            (await conn.execute(text("SELECT nspname FROM pg_namespace"))).scalars().all()
        )
        assert built.new_schema not in schemas and f"{built.new_schema}_old" not in schemas
        # The live names of the indexes (which migrations use) survive the switch.
        index_names = set(
            (
                await conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE schemaname = :s"),
                    {"s": settings.db_schema},
                )
            )
            .scalars()
            .all()
        )
        assert "dialogs_pkey" in index_names
    # Writes go on into the switched tables; every dialog stream has its row at its version.
    await customer_writes(served, "9900", "after the switch")
    await eventually(lambda: all_projected(runtime, 12 + len(written) + 1), timeout=60)
    await eventually(lambda: relayed(runtime), timeout=60)

    async def level() -> bool:
        async with runtime.engine.connect() as conn:
            behind = await conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT stream_id, max(stream_version) v FROM events "
                    "GROUP BY stream_id) e LEFT JOIN dialogs d ON d.id::text = e.stream_id "
                    "WHERE d.version IS DISTINCT FROM e.v"
                )
            )
            return behind == 0

    await eventually(level, timeout=60)
    # And the switched model is still what the topics say.
    again = await rebuild(
        model,
        database_url=settings.database_url,
        bootstrap=settings.kafka_bootstrap,
        names=names,
        live_schema=settings.db_schema,
    )
    try:
        assert [d for d in await compare(runtime.engine, again) if d[1] != d[2]] == []
    finally:
        await drop_copy(runtime.engine, again.new_schema)


def test_the_progress_bar_accepts_replay_progress() -> None:
    from rich.console import Console
    from rich.progress import Progress

    from openlines.kit.replay import ReplayProgress

    with Progress(console=Console(file=open("/dev/null", "w"))) as bar:
        progress = EventProgress(bar)
        progress.update("t", ReplayProgress(5, 10, 7))
        task = bar.tasks[0]
        assert (task.completed, task.total, task.fields["lag"]) == (5, 10, 7)
