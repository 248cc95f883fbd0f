"""DESIGN §3 steps 1-10 across the real processes, through the gateway, as operators see it."""

from __future__ import annotations

import random

import aiohttp
import pytest

from .conftest import Stack
from .steps import customer_says, eventually, get_json, json_if_ok, next_ws_event, post_json

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_dialog_flow_end_to_end(stack: Stack, http: aiohttp.ClientSession) -> None:
    base = stack.url
    ann, sue = stack.auth("ann"), stack.auth("sue", "supervisor")
    chat = random.randint(10**6, 10**7)

    # Only ann is online, so round-robin has one candidate and the flow is deterministic.
    status, body = await post_json(
        http, f"{base}/api/v1/operators/ann/presence", ann, {"status": "online"}, method="PUT"
    )
    assert status == 200, body
    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token('ann')}")
    try:
        # 1-3: the customer writes; ingest answers after the broker acked; dialogs opens one.
        await customer_says(http, base, chat, "Carla Customer", "Where is my order?")

        async def opened() -> str | None:
            body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all", sue)
            ids = [
                d["id"]
                for d in (body or {}).get("items", [])
                if d["customer"]["external_id"] == str(chat)
            ]
            return ids[0] if ids else None

        dialog_id = await eventually(opened, "the new dialog")

        # 4: routing assigns it to ann; notify pushes it to her stream.
        def assigned_to_ann(e: dict) -> bool:
            payload = e.get("event", {}).get("payload", {})
            return (
                e["type"] == "DialogAssigned"
                and payload["dialog_id"] == dialog_id
                and payload["operator_id"] == "ann"
            )

        await next_ws_event(ws, assigned_to_ann)

        async def active_dialog() -> dict | None:
            status, body = await get_json(http, f"{base}/api/v1/dialogs/{dialog_id}", ann)
            return body if status == 200 and body["status"] == "active" else None

        dialog = await eventually(active_dialog, "the dialog to be active for ann")
        assert dialog["assignee_id"] == "ann"
        assert dialog["customer"]["name"] == "Carla Customer"
        assert dialog["last_message"]["text"] == "Where is my order?"
        assert dialog["sla"]["waiting_since"] is not None

        # 5: crm-link created a lead and linked it; dialogs shows the link.
        async def linked() -> dict | None:
            status, body = await get_json(http, f"{base}/api/v1/dialogs/{dialog_id}", ann)
            return body if status == 200 and (body.get("crm") or {}).get("lead_id") else None

        lead_id = (await eventually(linked, "the CRM link"))["crm"]["lead_id"]
        status, lead = await get_json(http, f"{base}/api/v1/crm/leads/{lead_id}", sue)
        assert status == 200, lead
        assert [d["dialog_id"] for d in lead["dialogs"]] == [dialog_id]

        # 6-7: ann replies; outbound sends it to the sandbox provider; delivery becomes sent.
        status, reply = await post_json(
            http,
            f"{base}/api/v1/dialogs/{dialog_id}/messages",
            ann,
            {"text": "It ships today.", "client_message_id": f"c-{chat}"},
        )
        assert status == 202 and reply["status"] == "queued", reply

        async def sandbox_got_it() -> list | None:
            body = await json_if_ok(http, f"{base}/sandbox/tg-demo/sent", {})
            if body is None:
                return None
            hits = [m for m in body["sent"] if str(m["chat_id"]) == str(chat)]
            return hits or None

        sent = await eventually(sandbox_got_it, "the reply at the sandbox provider")
        assert [m["text"] for m in sent] == ["It ships today."]

        async def timeline_sent() -> list | None:
            body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", ann)
            if body is None:
                return None
            items = body["items"]
            outs = [m for m in items if m["direction"] == "out"]
            return items if outs and outs[0]["delivery"]["status"] == "sent" else None

        timeline = await eventually(timeline_sent, "delivery status sent in the timeline")
        directions = [m["direction"] for m in timeline]
        assert "in" in directions and "out" in directions and "system" in directions

        # The waiting clock is cleared by the operator's reply.
        status, dialog = await get_json(http, f"{base}/api/v1/dialogs/{dialog_id}", ann)
        assert dialog["sla"]["waiting_since"] is None

        # 9: ann is at capacity (max_dialogs 2) with two more customers; a third waits.
        others = [chat + 1, chat + 2]
        for other in others:
            await customer_says(http, base, other, f"Other {other}", "hello")

        async def queued() -> dict | None:
            body = await json_if_ok(http, f"{base}/api/v1/queues", sue)
            if body is None:
                return None
            lines = body["lines"]
            demo = next((q for q in lines if q["line_id"] == "demo"), None)
            return demo if demo and demo["waiting"] >= 1 else None

        await eventually(queued, "a dialog waiting in the demo queue")
        status, closed = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", ann)
        assert status == 200 and closed["status"] == "closed", closed

        async def ann_has_two_active() -> list | None:
            body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=active", ann)
            return body["items"] if body and len(body["items"]) == 2 else None

        active = await eventually(ann_has_two_active, "the queue drained to the freed operator")
        assert dialog_id not in [d["id"] for d in active]

        # 10: the customer writes again: a new dialog, linked to the same lead.
        await customer_says(http, base, chat, "Carla Customer", "One more thing")

        async def new_dialog_linked() -> dict | None:
            body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all", sue)
            if body is None:
                return None
            mine = [
                d
                for d in body["items"]
                if d["customer"]["external_id"] == str(chat) and d["id"] != dialog_id
            ]
            if mine and (mine[0].get("crm") or {}).get("lead_id"):
                return mine[0]
            return None

        second = await eventually(new_dialog_linked, "the returning customer's linked dialog")
        assert second["crm"]["lead_id"] == lead_id
        status, lead = await get_json(http, f"{base}/api/v1/crm/leads/{lead_id}", sue)
        assert {d["dialog_id"] for d in lead["dialogs"]} == {dialog_id, second["id"]}
        assert lead["dialogs"][0]["dialog_id"] == second["id"]  # newest activity first

        # The other tests share this stack: leave ann offline (routing offers her nothing more)
        # and holding nothing, since her max_dialogs (2) limits her manual takes too.
        await post_json(
            http, f"{base}/api/v1/operators/ann/presence", ann, {"status": "offline"}, method="PUT"
        )
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=active", ann)
        for held in (body or {}).get("items", []):
            status, _ = await post_json(http, f"{base}/api/v1/dialogs/{held['id']}/close", ann)
            assert status == 200
    finally:
        await ws.close()
