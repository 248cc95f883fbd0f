"""Run a service's real runtime in-process for its tests (real broker, real Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openlines.kit.runtime import ServiceRuntime


@asynccontextmanager
async def running(runtime: ServiceRuntime) -> AsyncIterator[str]:
    """Start the runtime (migrations, relay, consumers, timers, HTTP) and yield its base URL.

    Give the runtime's settings a free `http_port` (openlines.kit.embedded.free_port).
    """
    runner = await runtime.start()
    try:
        yield f"http://{runtime.settings.http_host}:{runtime.settings.http_port}"
    finally:
        await runtime.shutdown(runner)
