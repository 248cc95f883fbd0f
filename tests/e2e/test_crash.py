"""A service SIGKILLed mid-stream and restarted by the supervisor: nothing lost, nothing
duplicated in the timeline, no reply sent twice."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from typing import Any

import aiohttp
import pytest

from .conftest import Stack
from .steps import customer_says, eventually, json_if_ok, post_json

pytestmark = pytest.mark.infra  # runs servers or processes of its own

INBOUND, REPLIES = 20, 8


def service_record(stack: Stack, name: str) -> dict[str, Any]:
    state = json.loads((stack.home / "stack.json").read_text())
    return next(s for s in state["services"] if s["name"] == name)


async def reply_until_accepted(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], text: str, client_id: str
) -> None:
    # While dialogs is down the gateway answers 502: the client retries with the same
    # client_message_id, which must not create a second message.
    async with asyncio.timeout(90):
        while True:
            try:
                status, _ = await post_json(
                    http, url, headers, {"text": text, "client_message_id": client_id}
                )
            except aiohttp.ClientError:
                status = 0
            if status == 202:
                return
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("victim", ["dialogs", "outbound"])
async def test_service_killed_mid_stream_loses_and_duplicates_nothing(
    stack: Stack, http: aiohttp.ClientSession, victim: str
) -> None:
    base = stack.url
    bob = stack.auth("bob")
    chat = random.randint(10**7, 10**8)
    status, body = await post_json(
        http, f"{base}/api/v1/operators/bob/presence", bob, {"status": "online"}, method="PUT"
    )
    assert status == 200, body
    await customer_says(http, base, chat, "Kai Crash", "start")

    async def bobs_dialog() -> dict | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=active", bob)
        mine = [
            d for d in (body or {}).get("items", []) if d["customer"]["external_id"] == str(chat)
        ]
        return mine[0] if mine else None

    dialog_id = (await eventually(bobs_dialog, "the dialog assigned to bob"))["id"]
    reply_url = f"{base}/api/v1/dialogs/{dialog_id}/messages"
    before = service_record(stack, victim)

    async def customer() -> None:
        for i in range(INBOUND):
            await customer_says(http, base, chat, "Kai Crash", f"in {i}")
            await asyncio.sleep(0.1)

    async def operator() -> None:
        for i in range(REPLIES):
            await reply_until_accepted(http, reply_url, bob, f"out {i}", f"{chat}-{i}")
            await asyncio.sleep(0.25)

    async def kill() -> None:
        await asyncio.sleep(0.8)
        os.kill(before["pid"], signal.SIGKILL)

    await asyncio.gather(customer(), operator(), kill())

    async def restarted() -> dict | None:
        record = service_record(stack, victim)
        if record["pid"] == before["pid"]:
            return None
        return record if await json_if_ok(http, f"{record['url']}/readyz", {}) else None

    assert (await eventually(restarted, f"{victim} restarted and ready", 60))["restarts"] >= 1

    async def settled() -> list | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", bob)
        if body is None:
            return None
        items = body["items"]
        inbound = [m for m in items if m["direction"] == "in"]
        outbound = [m for m in items if m["direction"] == "out"]
        done = all(m["delivery"]["status"] in ("sent", "failed") for m in outbound)
        return items if len(inbound) >= INBOUND + 1 and len(outbound) >= REPLIES and done else None

    # A send caught mid-call is failed after outbound's lease rather than sent again.
    items = await eventually(settled, "every message in the timeline, every reply settled", 120)
    inbound_texts = [m["text"] for m in items if m["direction"] == "in"]
    outbound = [m for m in items if m["direction"] == "out"]
    assert sorted(inbound_texts) == sorted(["start", *(f"in {i}" for i in range(INBOUND))])
    assert sorted(m["text"] for m in outbound) == sorted(f"out {i}" for i in range(REPLIES))

    sent = (await json_if_ok(http, f"{base}/sandbox/tg-demo/sent", {}))["sent"]
    at_provider = [m["text"] for m in sent if str(m["chat_id"]) == str(chat)]
    assert len(at_provider) == len(set(at_provider)), f"a reply was sent twice: {at_provider}"
    for message in outbound:
        delivered = message["text"] in at_provider
        if message["delivery"]["status"] == "sent":
            assert delivered, message
        else:
            assert message["delivery"]["reason"] == "outcome_unknown_after_restart", message

    status, closed = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", bob)
    assert status == 200, closed
    await post_json(
        http, f"{base}/api/v1/operators/bob/presence", bob, {"status": "offline"}, method="PUT"
    )
