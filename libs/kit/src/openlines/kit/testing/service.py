"""Run a service's real runtime in-process for its tests (real broker, real Postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit.db.engine import create_engine
from openlines.kit.db.migrate import migrate
from openlines.kit.embedded import reserve_port
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.infra import consumer_settings
from openlines.kit.testing.publish import Publisher, publisher
from openlines.kit.testing.waiting import eventually


@asynccontextmanager
async def migrated_engine(
    database_url: str, db_schema: str, migrations: Path | None = None, *, pool_size: int
) -> AsyncIterator[AsyncEngine]:
    """An engine on `db_schema`, migrated with the kit's tables (and the service's
    `migrations`, if given), disposed afterwards: for tests that drive a service's parts
    without its runtime."""
    await asyncio.to_thread(migrate, database_url, db_schema, migrations)
    engine = create_engine(database_url, db_schema, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def running(
    runtime: ServiceRuntime, ready_timeout: float | None = 60.0
) -> AsyncIterator[str]:
    """Start the runtime (migrations, relay, consumers, timers, HTTP) and yield its base URL
    once it reports ready (consumers have joined their groups: on Tansu that takes seconds).
    `ready_timeout=None` yields at once, for tests of a service that starts unready.

    Give the runtime's settings a free `http_port` (openlines.kit.embedded.reserve_port).
    """
    runner = await runtime.start()
    try:
        if ready_timeout is not None:

            async def ready() -> bool:
                return (await runtime.health.evaluate(runtime.health.ready))[0]

            await eventually(
                ready, timeout=ready_timeout, what=f"{runtime.settings.service_name} ready"
            )
        yield f"http://{runtime.settings.http_host}:{runtime.settings.http_port}"
    finally:
        await runtime.shutdown(runner)


@dataclass(frozen=True)
class Served:
    """A service under test, running: its base URL, an HTTP client, a publisher into its
    topic namespace."""

    url: str
    http: aiohttp.ClientSession
    publisher: Publisher


@asynccontextmanager
async def serving(runtime: ServiceRuntime, client_id: str) -> AsyncIterator[Served]:
    """`running(runtime)` with what its tests drive it by: an HTTP client session and a
    publisher (as `client_id`) into the runtime's own topic namespace."""
    settings = runtime.settings
    async with (
        running(runtime) as url,
        aiohttp.ClientSession() as http,
        publisher(settings.kafka_bootstrap, settings.topic_namespace, client_id=client_id) as pub,
    ):
        yield Served(url, http, pub)


def isolated_settings(database_url: str, db_schema: str, kafka_bootstrap: str) -> dict[str, Any]:
    """Settings values that isolate one in-process service under test: its own schema, its
    own topic namespace (hence its own topics and consumer groups), a free HTTP port, plain
    logs, and consumer groups that form fast on the session's broker. Pass them with the
    service's own values: `Settings(**isolated_settings(...), ...)`.
    """
    return {
        "database_url": database_url,
        "db_schema": db_schema,
        "kafka_bootstrap": kafka_bootstrap,
        "topic_namespace": f"{db_schema}.",
        "create_topics": True,
        "http_port": reserve_port(),
        "log_json": False,
        **consumer_settings(kafka_bootstrap),
    }
