"""An operator's reading day across the real processes, through the gateway: per-operator
read and read-all, the counters (HTTP and the live WebSocket frame, which must agree), the
list's filters, search over an older message, and the customer's history."""

from __future__ import annotations

import random
import secrets
from typing import Any

import aiohttp
import pytest

from .conftest import Stack
from .steps import (
    customer_says,
    dialog_of_chat,
    eventually,
    get_json,
    next_ws_event,
    post_json,
    unassigned_dialog,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own

COUNTERS = ("unassigned", "unanswered", "unread", "mine_active")


def _counts(body: dict[str, Any]) -> dict[str, int]:
    return {name: body[name] for name in COUNTERS}


async def test_reading_counters_search_and_history(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, api = stack.url, f"{stack.url}/api/v1"
    ann, sue = stack.auth("ann"), stack.auth("sue", "supervisor")
    chat = random.randint(10**6, 10**7)
    keyword = f"zq{secrets.token_hex(4)}"  # a word no other test writes

    async def counters(who: dict[str, str]) -> dict[str, Any]:
        status, body = await get_json(http, f"{api}/counters", who)
        assert status == 200, body
        return dict(body)

    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token('ann')}")
    try:
        await next_ws_event(ws, lambda e: e["type"] == "hello")
        await ws.send_json({"type": "counters"})
        first = await next_ws_event(ws, lambda e: e["type"] == "counters")
        assert _counts(first) == _counts(await counters(ann))
        assert first["unread_display"] == str(first["unread"]) or first["unread"] > 99

        # A customer nobody is online for: a new unassigned, unanswered, unread dialog.
        dialog_id = await unassigned_dialog(
            http, base, sue, chat, name="Rita Reader", text=f"my order {keyword} is late"
        )
        grown = await next_ws_event(
            ws,
            lambda e: e["type"] == "counters" and e["unassigned"] == first["unassigned"] + 1,
        )
        # The live frame says what GET /api/v1/counters says (one definition, two counts).
        assert _counts(grown) == _counts(await counters(ann))
        assert grown["unread"] == first["unread"] + 1

        # More messages: the keyword is no longer in the last one, search still finds it.
        for text in ("hello?", "anyone there?"):
            await customer_says(http, base, chat, "Rita Reader", text)

        async def three_unread() -> dict | None:
            status, body = await get_json(http, f"{api}/dialogs/{dialog_id}", ann)
            return body if status == 200 and body["unread_count"] == 3 else None

        await eventually(three_unread, "three unread messages for ann")
        status, found = await get_json(http, f"{api}/dialogs?q={keyword[:6]}", ann)
        assert status == 200 and [d["id"] for d in found["items"]] == [dialog_id]
        status, found = await get_json(http, f"{api}/dialogs?q=rita%20{keyword}", sue)
        assert [d["id"] for d in found["items"]] == [dialog_id]
        for params in ("unanswered=true", "unread=true", "tab=unassigned&sort=waiting"):
            status, page = await get_json(http, f"{api}/dialogs?{params}&limit=200", ann)
            assert status == 200 and dialog_id in [d["id"] for d in page["items"]], params
        status, bad = await get_json(http, f"{api}/dialogs?unread=maybe", ann)
        assert (status, bad["error"]["code"]) == (400, "invalid_query")

        # ann reads: her unread goes (live too), sue's stays.
        status, read = await post_json(http, f"{api}/dialogs/{dialog_id}/read", ann)
        assert (status, read["unread_count"]) == (200, 0)
        await next_ws_event(
            ws, lambda e: e["type"] == "counters" and e["unread"] == grown["unread"] - 1
        )
        assert (await get_json(http, f"{api}/dialogs/{dialog_id}", sue))[1]["unread_count"] == 3
        status, all_read = await post_json(http, f"{api}/dialogs/read-all", sue)
        assert status == 200 and all_read["read"] >= 1
        assert (await counters(sue))["unread"] == 0

        # ann takes and answers it: hers and active, no longer unanswered.
        assert (await post_json(http, f"{api}/dialogs/{dialog_id}/take", ann))[0] == 200
        reply = {"text": "On its way!", "client_message_id": f"r-{chat}"}
        assert (await post_json(http, f"{api}/dialogs/{dialog_id}/messages", ann, reply))[0] == 202
        status, mine = await get_json(http, f"{api}/dialogs?participant=me&tab=active", ann)
        assert dialog_id in [d["id"] for d in mine["items"]]
        status, waiting = await get_json(http, f"{api}/dialogs?unanswered=true&limit=200", ann)
        assert dialog_id not in [d["id"] for d in waiting["items"]]

        # Closed; the customer comes back: the new dialog's history holds the first one.
        assert (await post_json(http, f"{api}/dialogs/{dialog_id}/close", ann))[0] == 200
        await customer_says(http, base, chat, "Rita Reader", "me again")

        second_dialog = await dialog_of_chat(
            http,
            base,
            sue,
            chat,
            query="tab=unassigned&limit=200",
            where=lambda d: d["id"] != dialog_id,
            what="the customer's second dialog",
        )
        second = second_dialog["id"]
        status, history = await get_json(http, f"{api}/dialogs/{second}/history", ann)
        assert status == 200, history
        [earlier] = history["items"]
        # (4 of the customer and ann, and the rating request the demo line sends on close.)
        assert (earlier["id"], earlier["status"], earlier["message_count"]) == (
            dialog_id,
            "closed",
            5,
        )
        status, timeline = await get_json(
            http, f"{api}/dialogs/{second}/history/{dialog_id}/timeline", ann
        )
        assert status == 200
        texts = [m["text"] for m in timeline["items"] if m["direction"] in ("in", "out")]
        assert texts[0] == f"my order {keyword} is late" and texts[-2] == "On its way!"
        assert texts[-1].startswith("How would you rate our help?")
    finally:
        await ws.close()
    # Leave nothing open for the other tests.
    if "second" in locals():
        await post_json(http, f"{api}/dialogs/{second}/close", sue)
