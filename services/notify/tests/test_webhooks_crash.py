"""No delivery lost across a SIGKILL of notify: deliveries recorded but not sent, and calls
cut short mid-flight, all reach the receiver after the restart (some twice: the receiver
dedupes by X-Openlines-Delivery), still in order per dialog."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
from sqlalchemy import text

import openlines.notify
from openlines.events.topics import DIALOGS
from openlines.kit.testing.service import running
from openlines.notify.app import build_service
from openlines.notify.settings import NotifySettings

from .notify_support import Publisher
from .test_webhooks_delivery import FAST, SECRET, conversation, figures, receiving, subscribe
from .webhook_support import Receiver, Reply

Settings = Callable[..., NotifySettings]


def _as_env(settings: NotifySettings) -> dict[str, str]:
    env = {
        f"OPENLINES_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    package_src = Path(openlines.notify.__file__).parents[2]
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(package_src), os.environ.get("PYTHONPATH")])
    )
    return env


async def _wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:
            assert proc.returncode is None, "notify exited during start-up"
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def test_no_delivery_is_lost_across_a_sigkill(
    make_settings: Settings,
    publisher: Publisher,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = Receiver(SECRET, default=Reply(200, hang=0.2))  # slow enough to be caught mid-call
    settings = make_settings(**{**FAST, "webhook_lease_seconds": 2.0})
    dialogs, events = conversation(dialogs=6, messages=8)
    url = f"http://127.0.0.1:{settings.http_port}"
    async with receiving(receiver):
        with (tmp_path / "notify.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "openlines.notify",
                env={**os.environ, **_as_env(settings)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                await _wait_ready(url, proc)
                await subscribe(http, url, receiver)
                await publisher.publish(DIALOGS, *events)
                await receiver.until(lambda r: len(r.received) >= 12 and r.in_flight > 0)
            finally:
                proc.kill()  # mid-call, with most deliveries still queued
                await proc.wait()
        before_kill = len(receiver.delivered_ids())

        restarted = build_service(settings)
        # The killed member may keep the consumer group rebalancing for a while on the
        # embedded broker: the dispatcher works from the rows meanwhile.
        async with running(restarted, ready_timeout=None):
            async with restarted.engine.connect() as conn:
                recorded = (
                    await conn.execute(text("SELECT count(*) FROM webhook_deliveries"))
                ).scalar_one()
            await receiver.until_delivered(len(events), timeout=150)
            async with restarted.engine.connect() as conn:
                states: dict[str, int] = dict(
                    (
                        await conn.execute(
                            text("SELECT state, count(*) FROM webhook_deliveries GROUP BY 1")
                        )
                    ).all()
                )

    # Usually all are recorded before the kill; under load some still wait for the consumer,
    # which then takes them after the restart: either way none is lost.
    print(f"\nrecorded before the restart: {recorded} of {len(events)}")
    assert 0 < before_kill < len(events)
    assert sorted(receiver.delivered_ids()) == sorted(str(e.event_id) for e in events)
    by_id = {str(e.event_id): e for e in events}
    for dialog in dialogs:
        versions = [
            by_id[i].stream_version
            for i in receiver.delivered_ids()
            if by_id[i].stream_id == str(dialog.id)
        ]
        assert versions == list(range(1, 11)), versions
    assert all(r.signed for r in receiver.received)
    counted = figures(f"SIGKILL after {before_kill} delivered", receiver, len(events))
    assert counted["duplicates_deduplicated_by_id"] >= 0
    assert states.get("delivered", 0) >= len(events) - 4  # the last outcomes may be in flight
