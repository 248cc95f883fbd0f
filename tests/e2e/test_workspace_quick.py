"""Quick replies, drafts and typing across the real processes, through the gateway.

On a line of its own (`quick`, operators qa and qb; conftest), so that the demo operators'
capacity is left to the other tests: sue (supervisor) writes a quick reply with placeholders,
qa finds it, keeps a draft, sends the reply rendered (it reaches the sandbox provider), and the
draft is gone; qa's typing reaches sue's stream and not qb's, who works on the line but may
not see qa's dialog.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from .conftest import QUICK_CHANNEL, QUICK_SECRET, Stack
from .steps import (
    customer_says,
    eventually,
    get_json,
    json_if_ok,
    next_ws_event,
    post_json,
    pushed,
    set_presence,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def _customer_says(
    http: aiohttp.ClientSession, base: str, chat: int, name: str, text: str
) -> None:
    await customer_says(http, base, chat, name, text, channel=QUICK_CHANNEL, secret=QUICK_SECRET)


async def _presence(http: aiohttp.ClientSession, stack: Stack, who: str, status: str) -> None:
    await set_presence(http, stack.url, stack.auth(who), who, status)


async def test_quick_reply_draft_and_typing(stack: Stack, http: aiohttp.ClientSession) -> None:
    base = stack.url
    qa, sue = stack.auth("qa"), stack.auth("sue", "supervisor")
    chat = random.randint(10**6, 10**7)

    # sue (a supervisor: Bitrix24's chat admin) writes the quick reply; qa, an operator, may not.
    reply = {
        "title": f"Greeting {chat}",
        "text": "Hello {{ customer.first_name }}, {{ operator.name }} of {{ line.name }} here.",
        "category": "greetings",
        "lines": ["quick"],
    }
    status, created = await post_json(http, f"{base}/api/v1/quick-replies", sue, reply)
    assert status == 201, created
    status, refused = await post_json(http, f"{base}/api/v1/quick-replies", qa, reply)
    assert (status, refused["error"]["code"]) == (403, "not_allowed")
    bad = {**reply, "text": "{{ customer.__class__.__mro__ }}"}
    status, refused = await post_json(http, f"{base}/api/v1/quick-replies", sue, bad)
    assert (status, refused["error"]["code"]) == (422, "unknown_variable")

    # Only qa is online on the quick line: round robin gives her the dialog.
    await _presence(http, stack, "qb", "offline")
    await _presence(http, stack, "qa", "online")
    stream = f"{base}/api/v1/stream?token="
    sue_ws = await http.ws_connect(stream + stack.token("sue", "supervisor"))
    qa_ws = await http.ws_connect(stream + stack.token("qa"))
    qb_ws = await http.ws_connect(stream + stack.token("qb"))
    dialog_id = None
    try:
        await _customer_says(http, base, chat, "Quinn Customer", "Hi, anyone there?")

        def assigned_to_qa(e: dict[str, Any]) -> bool:
            payload = e.get("event", {}).get("payload", {})
            return e["type"] == "DialogAssigned" and payload.get("operator_id") == "qa"

        # Pushed once notify has applied it: its view of the dialog is current from here.
        dialog_id = (await next_ws_event(sue_ws, assigned_to_qa))["dialog_id"]

        # qa finds the quick reply among her line's.
        status, page = await get_json(
            http, f"{base}/api/v1/quick-replies?line=quick&category=greetings&q={chat}", qa
        )
        assert status == 200 and [r["id"] for r in page["items"]] == [created["id"]], page

        # A draft, kept on the server (another session reads it back).
        draft_url = f"{base}/api/v1/dialogs/{dialog_id}/draft"
        status, draft = await post_json(http, draft_url, qa, {"text": "Hello Qu"}, method="PUT")
        assert status == 200, draft
        assert await get_json(http, draft_url, qa) == (200, draft)

        # qa types: sue (who sees every dialog) hears of it, qb (may not see it) does not.
        await qa_ws.send_json({"type": "typing", "dialog_id": dialog_id})
        typing = await next_ws_event(
            sue_ws, lambda e: e["type"] == "typing" and e["dialog_id"] == dialog_id
        )
        assert typing == {"type": "typing", "dialog_id": dialog_id, "operator_id": "qa"}
        assert [m for m in await pushed(qb_ws) if m["type"] == "typing"] == []
        assert [m for m in await pushed(qa_ws) if m["type"] in ("typing", "error")] == []

        # The quick reply goes out rendered; a retry is the same message.
        send = {"quick_reply_id": created["id"], "client_message_id": f"qr-{chat}"}
        messages = f"{base}/api/v1/dialogs/{dialog_id}/messages"
        status, sent = await post_json(http, messages, qa, send)
        assert status == 202, sent
        assert await post_json(http, messages, qa, send) == (202, sent)

        async def at_sandbox() -> list[str] | None:
            body = await json_if_ok(http, f"{base}/sandbox/{QUICK_CHANNEL}/sent", {})
            texts = [
                m["text"] for m in (body or {}).get("sent", []) if str(m["chat_id"]) == str(chat)
            ]
            return texts or None

        texts = await eventually(at_sandbox, "the quick reply at the sandbox provider")
        assert texts == ["Hello Quinn, Quick Ann of Quick line here."]

        # Sending cleared the draft.
        status, gone = await get_json(http, draft_url, qa)
        assert (status, gone["error"]["code"]) == (404, "no_draft")
    finally:
        for ws in (sue_ws, qa_ws, qb_ws):
            await ws.close()
        if dialog_id is not None:
            await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", qa)
        await _presence(http, stack, "qa", "offline")
        async with http.delete(f"{base}/api/v1/quick-replies/{created['id']}", headers=sue) as r:
            assert r.status == 204
