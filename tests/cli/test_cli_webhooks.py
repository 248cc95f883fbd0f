"""`openlines webhooks listen`: verifies each delivery's signature, prints the event, marks
a delivery seen before."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import aiohttp
import pytest

from openlines.events import encode
from openlines.events.testing import factories
from openlines.events.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from openlines.kit.embedded import reserve_port

pytestmark = pytest.mark.infra  # runs processes of its own

SECRET = "whsec_cli-listen-test"


async def test_listen_verifies_prints_and_marks_duplicates() -> None:
    port = reserve_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "webhooks",
        "listen",
        "--port",
        str(port),
        "--secret",
        SECRET,
        "--max",
        "2",
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    dialog_id = uuid.uuid4()
    stream = factories.DialogStream()
    first = stream.envelope(factories.dialog_opened(dialog_id, name="Lis Tener"))
    second = stream.envelope(factories.message_appended(dialog_id, "hello hook"))
    try:
        async with asyncio.timeout(30):
            assert b"listening on" in await proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/hook"
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes, event: str, delivery: str, signature: str) -> int:
                headers = {
                    "Content-Type": "application/json",
                    EVENT_HEADER: event,
                    DELIVERY_HEADER: delivery,
                    SIGNATURE_HEADER: signature,
                }
                async with http.post(url, data=body, headers=headers) as response:
                    return response.status

            body = encode(first).value
            assert await post(body, first.type, str(first.event_id), sign(SECRET, body)) == 200
            forged = sign("not-the-secret-at-all", body)
            assert await post(body, first.type, str(first.event_id), forged) == 401
            assert await post(body, first.type, str(first.event_id), sign(SECRET, body)) == 200
            body = encode(second).value
            assert await post(body, second.type, str(second.event_id), sign(SECRET, body)) == 200
        async with asyncio.timeout(30):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    lines = text.splitlines()
    assert any("DialogOpened" in line and str(first.event_id) in line for line in lines), text
    assert any("refused" in line and "does not match" in line for line in lines), text
    assert sum("(duplicate)" in line for line in lines) == 1, text
    assert any("MessageAppended" in line and "hello hook" in line for line in lines), text


async def test_listen_needs_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENLINES_WEBHOOK_SECRET"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "webhooks",
        "listen",
        "--port",
        "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 2 and b"--secret" in out
