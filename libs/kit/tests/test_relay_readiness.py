"""A service whose relay holds work and cannot publish turns /readyz red, with the backlog in
/metrics; before, /readyz stayed ready and the gauge read 0."""

from __future__ import annotations

import asyncio

import aiohttp

from openlines.kit.runtime import ServiceRuntime
from openlines.kit.settings import KitSettings
from openlines.kit.testing.service import isolated_settings, running

from .helpers import renamed


async def test_readyz_turns_red_when_the_relay_stalls_with_work(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> None:
    settings = KitSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        service_name="stall-test",
        relay_stall_seconds=1.0,
    )
    runtime = ServiceRuntime(settings)
    async with running(runtime) as url, aiohttp.ClientSession() as http:
        await runtime.producer.stop()  # every publish round now fails, as with a lost broker
        async with runtime.engine.begin() as conn:
            for i in range(3):
                stream = f"s{i}"
                await runtime.event_store.append(
                    conn, stream, 0, [renamed(1, stream)], topic="openlines.dialogs.v1"
                )

        async def readyz() -> tuple[int, dict[str, object]]:
            async with http.get(f"{url}/readyz") as resp:
                return resp.status, await resp.json()

        async with asyncio.timeout(30):
            while (status := await readyz())[0] == 200:
                await asyncio.sleep(0.1)
        code, body = status
        assert code == 503 and body["checks"] == {"database": True, "relay": False}, body
        async with http.get(f"{url}/metrics") as resp:
            metrics = await resp.text()
        assert f'openlines_relay_backlog{{schema="{db_schema}"}} 3.0' in metrics
