"""Receive events by webhook, as the README shows it: through the gateway, an admin
subscribes `openlines webhooks listen` to the demo line; a customer writes; the listener
verifies and prints the dialog's events."""

from __future__ import annotations

import asyncio
import os
import random
import sys

import aiohttp
import pytest

from openlines.kit.embedded import reserve_port

from .conftest import Stack
from .steps import customer_says, eventually, json_if_ok, post_json

pytestmark = pytest.mark.infra  # runs servers or processes of its own

SECRET = "whsec_e2e-webhook-secret"


async def test_an_admin_subscribes_a_listener_and_it_prints_the_dialogs_events(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, admin = stack.url, stack.auth("ada", "admin")
    port = reserve_port()
    listener = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "webhooks",
        "listen",
        "--port",
        str(port),
        "--secret",
        SECRET,
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert listener.stdout is not None
    chat = random.randint(10**7, 10**8)
    text = f"hello hook {chat}"
    webhook = None
    try:
        async with asyncio.timeout(30):
            assert b"listening on" in await listener.stdout.readline()
        # Only the chat admin subscribes.
        body = {
            "url": f"http://127.0.0.1:{port}/hook",
            "event_types": ["DialogOpened", "MessageAppended"],
            "lines": ["demo"],
            "secret": SECRET,
        }
        status, refused = await post_json(
            http, f"{base}/api/v1/webhooks", stack.auth("sue", "supervisor"), body
        )
        assert (status, refused["error"]["code"]) == (403, "not_allowed")
        status, webhook = await post_json(http, f"{base}/api/v1/webhooks", admin, body)
        assert status == 201, webhook
        assert webhook["secret"] == SECRET

        await customer_says(http, base, chat, "Wes Hook", text)
        seen: list[str] = []
        async with asyncio.timeout(60):
            while not any(text in line and "MessageAppended" in line for line in seen):
                seen.append((await listener.stdout.readline()).decode())
        mine = [line for line in seen if "Wes Hook" in line or text in line]
        assert any("DialogOpened" in line for line in mine), seen
        assert not any("refused" in line for line in seen), seen

        hook = f"{base}/api/v1/webhooks/{webhook['id']}"

        async def delivered() -> list[dict] | None:
            page = await json_if_ok(http, f"{hook}/deliveries?status=delivered", admin)
            types = {d["event_type"] for d in (page or {}).get("items", [])}
            return page["items"] if {"DialogOpened", "MessageAppended"} <= types else None

        items = await eventually(delivered, "the deliveries recorded as delivered")
        assert all(d["last_status"] == 200 and d["attempts"] >= 1 for d in items)
    finally:
        listener.kill()
        await listener.wait()
        if webhook is not None and "id" in webhook:
            async with http.delete(f"{base}/api/v1/webhooks/{webhook['id']}", headers=admin):
                pass
