"""At most once across crashes: a send cut short by SIGKILL is reported, never repeated."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

import openlines.outbound
from openlines.events.catalog import MessageDispatched, MessageDispatchFailed
from openlines.kit.testing.service import running
from openlines.outbound import jobs
from openlines.outbound.app import build_service
from openlines.outbound.domain import send_job_for
from openlines.outbound.settings import OutboundSettings

from .outbound_support import Dialogs, OutboundTopic, Provider, Reply, reply_event

Settings = Callable[..., OutboundSettings]


def _as_env(settings: OutboundSettings) -> dict[str, str]:
    env = {
        f"OPENLINES_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    # The package's own source, in case the environment's editable install predates it.
    package_src = Path(openlines.outbound.__file__).parents[2]
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(package_src), os.environ.get("PYTHONPATH")])
    )
    return env


async def _wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:
            assert proc.returncode is None, "outbound exited during start-up"
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def test_a_send_cut_short_by_sigkill_is_never_repeated_after_restart(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
    tmp_path: Path,
) -> None:
    provider.script = [Reply(hang=True)]  # the provider takes the message and never answers
    first = make_settings(send_timeout_seconds=30, send_lease_seconds=60)
    appended = reply_event("maybe delivered")
    with (tmp_path / "outbound.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "openlines.outbound",
            env={**os.environ, **_as_env(first)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await _wait_ready(f"http://127.0.0.1:{first.http_port}", proc)
            await dialogs.publish(appended)
            async with asyncio.timeout(60):
                await provider.received.wait()
        finally:
            proc.kill()  # mid-call: the outcome is unknown
            await proc.wait()

    restarted = build_service(make_settings(send_timeout_seconds=0.5, send_lease_seconds=1.0))
    async with running(restarted):
        async with restarted.engine.connect() as conn:
            left = await jobs.job_state(conn, appended.payload.message_id)
        outcome = await outbound_topic.outcome_of(appended.payload.message_id, timeout=60)
        # The conversation is not blocked: the next reply goes out. It is recorded straight in
        # the table because the killed process still holds its consumer-group membership, and
        # the embedded broker keeps the group rebalancing for minutes (see the README).
        later = reply_event("after the restart")
        job = send_job_for(later.payload, event_id=later.event_id, correlation_id=None)
        assert job is not None
        async with restarted.engine.begin() as conn:
            await jobs.record(conn, job)
        later_outcome = await outbound_topic.outcome_of(later.payload.message_id, timeout=60)

    assert left is not None and left["state"] in ("sending", "failed")
    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert outcome.payload.reason == "outcome_unknown_after_restart"
    assert outcome.payload.retryable is False
    assert outcome.payload.attempts == 1
    assert isinstance(later_outcome.payload, MessageDispatched)
    assert provider.texts() == ["maybe delivered", "after the restart"]
    assert len(outbound_topic.outcomes_of(appended.payload.message_id)) == 1
