"""WhatsApp Cloud API end to end, through the gateway, on a WhatsApp line of its own: a customer
writes, routing assigns, the operator answers, the sandbox's Graph API gets it and reports sent,
delivered and read back through signed status webhooks, which reach the timeline."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from typing import Any

import aiohttp
import pytest

from .conftest import WA_CHANNEL, WA_OPERATOR, WA_PHONE_ID, WA_SECRET, WA_VERIFY, Stack
from .steps import (
    eventually,
    get_json,
    json_if_ok,
    next_ws_event,
    post_json,
    set_presence,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own

CHANNEL, APP_SECRET, VERIFY_TOKEN, PHONE_NUMBER_ID = WA_CHANNEL, WA_SECRET, WA_VERIFY, WA_PHONE_ID
WEBHOOK = f"/webhooks/whatsapp/{CHANNEL}"


def _wa_id() -> str:
    return str(random.randint(10**10, 10**11))


def notification(wa_id: str, text: str, *, name: str = "Wanda Customer", ago: float = 0) -> bytes:
    message = {
        "from": wa_id,
        "id": f"wamid.e2e.{wa_id}.{time.time_ns()}",
        "timestamp": str(int(time.time() - ago)),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def customer_writes(
    http: aiohttp.ClientSession, base: str, wa_id: str, text: str, *, ago: float = 0
) -> dict[str, Any]:
    body = notification(wa_id, text, ago=ago)
    async with http.post(base + WEBHOOK, data=body, headers=signed(body)) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
        return dict(answer)


async def dialog_of(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], wa_id: str, **want: Any
) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all&channel={CHANNEL}", headers)
        for dialog in (body or {}).get("items", []):
            if dialog["customer"]["external_id"] == wa_id and all(
                dialog.get(k) == v for k, v in want.items()
            ):
                return dict(dialog)
        return None

    return await eventually(found, f"the dialog of {wa_id} ({want})")


async def sandbox_sent(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    status, body = await get_json(http, f"{base}/sandbox/{CHANNEL}/sent", {})
    assert status == 200, body
    return dict(body)


async def outbound_status(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], dialog_id: str, message: str
) -> dict[str, Any] | None:
    body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", headers)
    for item in (body or {}).get("items", []):
        if item["id"] == message:
            return dict(item["delivery"] or {})
    return None


async def close(
    http: aiohttp.ClientSession, base: str, sue: dict[str, str], dialog_id: str
) -> None:
    # Frees the assignee's capacity for the other tests of the line.
    status, body = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", sue)
    assert status == 200, body


async def test_a_whatsapp_conversation_end_to_end(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base = stack.url
    wa1, sue = stack.auth(WA_OPERATOR), stack.auth("sue", "supervisor")
    wa_id = _wa_id()
    await set_presence(http, base, wa1, WA_OPERATOR, "online")
    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token(WA_OPERATOR)}")
    try:
        answer = await customer_writes(http, base, wa_id, "Hola, is my order coming?")
        assert len(answer["event_ids"]) == 1

        # Routing assigns it (wa1 is online on the line).
        dialog = await dialog_of(http, base, sue, wa_id, status="active")
        dialog_id, assignee = dialog["id"], dialog["assignee_id"]
        assert dialog["channel_type"] == "whatsapp"
        assert dialog["customer"]["name"] == "Wanda Customer"
        assert dialog["last_message"]["text"] == "Hola, is my order coming?"
        operator = stack.auth(assignee)

        status, reply = await post_json(
            http,
            f"{base}/api/v1/dialogs/{dialog_id}/messages",
            operator,
            {"text": "Yes, it ships today.", "client_message_id": f"wa-{wa_id}"},
        )
        assert status == 202 and reply["status"] == "queued", reply
        message_id = reply["message_id"]

        # The sandbox's Graph API got it, for this customer.
        async def delivered_to_sandbox() -> dict[str, Any] | None:
            sent = await sandbox_sent(http, base)
            mine = [m for m in sent["sent"] if m["chat_id"] == wa_id]
            return mine[0] if mine else None

        sent = await eventually(delivered_to_sandbox, "the reply at the sandbox")
        assert sent["text"] == "Yes, it ships today."
        assert sent["body"]["type"] == "text"

        # Its status webhooks came back through ingest: sent, delivered, read in the timeline.
        async def read() -> dict[str, Any] | None:
            delivery = await outbound_status(http, base, sue, dialog_id, message_id)
            return delivery if delivery and delivery["status"] == "read" else None

        delivery = await eventually(read, "delivery status read in the timeline")
        assert delivery["provider_message_id"] == sent["wamid"]
        if assignee == WA_OPERATOR:
            seen: list[str] = []
            while seen[-1:] != ["read"]:
                event = await next_ws_event(
                    ws,
                    lambda e: (
                        e.get("type") == "MessageDeliveryUpdated"
                        and e["event"]["payload"]["message_id"] == message_id
                    ),
                )
                seen.append(event["event"]["payload"]["status"])
            assert seen == ["sent", "delivered", "read"]
        webhooks = [
            w
            for w in (await sandbox_sent(http, base))["status_webhooks"]
            if w["wamid"] == sent["wamid"]
        ]
        assert [(w["status"], w["answer"]) for w in webhooks] == [
            ("sent", 200),
            ("delivered", 200),
            ("read", 200),
        ]
        await close(http, base, sue, dialog_id)
    finally:
        await ws.close()


async def test_a_failed_status_reaches_the_timeline(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, sue = stack.url, stack.auth("sue", "supervisor")
    wa_id = _wa_id()
    await customer_writes(http, base, wa_id, "hello?")
    dialog_id = (await dialog_of(http, base, sue, wa_id))["id"]
    status, body = await post_json(
        http, f"{base}/sandbox/{CHANNEL}/faults", {}, {"status": 200, "delivery_failure": True}
    )
    assert status == 200, body
    status, reply = await post_json(
        http,
        f"{base}/api/v1/dialogs/{dialog_id}/messages",
        sue,
        {"text": "Are you there?", "client_message_id": f"fail-{wa_id}"},
    )
    assert status == 202, reply

    async def failed() -> dict[str, Any] | None:
        delivery = await outbound_status(http, base, sue, dialog_id, reply["message_id"])
        return delivery if delivery and delivery["status"] == "failed" else None

    delivery = await eventually(failed, "delivery status failed in the timeline")
    assert delivery["reason"] == "131026: Message undeliverable"
    await close(http, base, sue, dialog_id)


async def test_outside_the_window_only_a_template_goes_out(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, sue = stack.url, stack.auth("sue", "supervisor")
    wa_id = _wa_id()
    # The customer's message is 25 hours old: the customer-service window is closed.
    await customer_writes(http, base, wa_id, "old news", ago=25 * 3600)
    dialog_id = (await dialog_of(http, base, sue, wa_id))["id"]
    url = f"{base}/api/v1/dialogs/{dialog_id}/messages"

    status, body = await post_json(http, url, sue, {"text": "hi again", "client_message_id": "t1"})
    assert (status, body["error"]["code"]) == (409, "window_closed"), body
    status, body = await post_json(
        http,
        url,
        sue,
        {
            "template": {"name": "nope", "language": "en", "variables": []},
            "client_message_id": "t2",
        },
    )
    assert (status, body["error"]["code"]) == (422, "unknown_template"), body

    template = {"name": "order_update", "language": "en", "variables": ["A-17", "on its way"]}
    status, reply = await post_json(
        http, url, sue, {"template": template, "client_message_id": "t3"}
    )
    assert status == 202 and reply["status"] == "queued", reply

    async def at_sandbox() -> dict[str, Any] | None:
        mine = [m for m in (await sandbox_sent(http, base))["sent"] if m["chat_id"] == wa_id]
        return mine[0] if mine else None

    sent = await eventually(at_sandbox, "the template at the sandbox")
    assert sent["type"] == "template"
    assert sent["body"]["template"] == {
        "name": "order_update",
        "language": {"code": "en"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "A-17"},
                    {"type": "text", "text": "on its way"},
                ],
            }
        ],
    }

    async def read() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", sue)
        outs = [m for m in (body or {}).get("items", []) if m["id"] == reply["message_id"]]
        return outs[0] if outs and outs[0]["delivery"]["status"] == "read" else None

    message = await eventually(read, "the template read in the timeline")
    assert message["text"] == "Your order A-17 is on its way."
    await close(http, base, sue, dialog_id)


async def test_webhook_signature_handshake_and_size(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base = stack.url
    body = notification(_wa_id(), "forged")
    async with http.post(base + WEBHOOK, data=body, headers=signed(body, "wrong")) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_secret"
    async with http.post(
        base + WEBHOOK, data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 401

    hub = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8765309"}
    async with http.get(base + WEBHOOK, params=hub) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == "8765309"
    async with http.get(base + WEBHOOK, params={**hub, "hub.verify_token": "guess"}) as resp:
        assert resp.status == 403
    # The demo channel of config/demo.yaml answers Meta's handshake with its published token.
    demo = {**hub, "hub.verify_token": "demo-verify-token"}
    async with http.get(base + "/webhooks/whatsapp/wa-demo", params=demo) as resp:
        assert (resp.status, await resp.text()) == (200, "8765309")

    huge = notification(_wa_id(), "x" * (2 * 1024 * 1024))
    async with http.post(base + WEBHOOK, data=huge, headers=signed(huge)) as resp:
        assert resp.status == 413
