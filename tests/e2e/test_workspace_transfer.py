"""An operator's day, transfer part, through the gateway: ann takes a dialog and hands it to
bob (she keeps a read-only view), joins it again and leaves, bob cannot leave his own dialog,
and a note @mentions op1 of another line, who is pushed `mentioned` on the WebSocket and may
then open the dialog read-only."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from .conftest import Stack
from .steps import get_json, next_ws_event, post_json, unassigned_dialog

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_transfer_participants_and_a_note_with_a_mention(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, chat = stack.url, random.randint(10**8, 10**9)
    ann, bob, op1 = stack.auth("ann"), stack.auth("bob"), stack.auth("op1")
    sue = stack.auth("sue", "supervisor")
    stream = f"{base.replace('http', 'ws', 1)}/api/v1/stream"
    dialog_id = await unassigned_dialog(http, base, sue, chat, "Tia Transfer", "my order?")
    url = f"{base}/api/v1/dialogs/{dialog_id}"
    bob_ws = await http.ws_connect(f"{stream}?token={stack.token('bob')}")
    op1_ws = await http.ws_connect(f"{stream}?token={stack.token('op1')}")
    try:
        for ws in (bob_ws, op1_ws):
            await next_ws_event(ws, lambda m: m["type"] == "hello")
        status, taken = await post_json(http, f"{url}/take", ann)
        assert (status, taken["assignee_id"], taken["can_write"]) == (200, "ann", True), taken

        # ann hands it to bob: he is told, she keeps a read-only view of her line's dialog.
        status, moved = await post_json(
            http, f"{url}/transfer", ann, {"to_operator": "bob", "reason": "billing question"}
        )
        assert (status, moved["assignee_id"], moved["can_write"]) == (200, "bob", False), moved
        pushed = await next_ws_event(
            bob_ws, lambda m: m["type"] == "DialogTransferred" and m["dialog_id"] == dialog_id
        )
        assert pushed["reason"] == "assigned_to_you"
        status, view = await get_json(http, url, ann)
        assert (status, view["assignee_id"], view["can_write"]) == (200, "bob", False)
        status, timeline = await get_json(http, f"{url}/timeline", ann)
        assert (status, timeline["can_write"]) == (200, False)
        assert "ann transferred the dialog from ann to bob (billing question)" in [
            m["text"] for m in timeline["items"] if m["direction"] == "system"
        ]
        status, refused = await post_json(
            http, f"{url}/messages", ann, {"text": "still here", "client_message_id": "t1"}
        )
        assert (status, refused["error"]["code"]) == (403, "not_allowed")
        status, page = await get_json(http, f"{base}/api/v1/dialogs?tab=active", ann)
        assert dialog_id not in [d["id"] for d in page["items"]]

        # ann joins to help, writes, and leaves again; bob, its only other operator, cannot.
        status, joined = await post_json(http, f"{url}/join", ann)
        assert (status, joined["participants"], joined["can_write"]) == (200, ["ann"], True)
        status, _ = await post_json(
            http, f"{url}/messages", ann, {"text": "ann here too", "client_message_id": "t2"}
        )
        assert status == 202
        status, left = await post_json(http, f"{url}/leave", ann)
        assert (status, left["participants"], left["can_write"]) == (200, [], False)
        status, last = await post_json(http, f"{url}/leave", bob)
        assert (status, last["error"]["code"]) == (409, "last_operator")

        # A note mentioning op1 (of another line): pushed to op1, who may read, not write.
        status, _ = await get_json(http, url, op1)
        assert status == 404
        status, note = await post_json(
            http, f"{url}/notes", bob, {"text": "@op1 is this customer yours?", "mentions": []}
        )
        assert (status, note["mentions"]) == (201, ["op1"]), note
        mention: dict[str, Any] = await next_ws_event(
            op1_ws, lambda m: m["type"] == "MessageAppended" and m["dialog_id"] == dialog_id
        )
        payload = mention["event"]["payload"]
        assert (mention["reason"], payload["direction"], payload["mentions"]) == (
            "mentioned",
            "note",
            ["op1"],
        )
        status, view = await get_json(http, url, op1)
        assert (status, view["can_write"]) == (200, False)
        status, timeline = await get_json(http, f"{url}/timeline", op1)
        assert [m["text"] for m in timeline["items"] if m["direction"] == "note"] == [
            "@op1 is this customer yours?"
        ]
        status, refused = await post_json(http, f"{url}/notes", op1, {"text": "not mine"})
        assert (status, refused["error"]["code"]) == (403, "not_allowed")
    finally:
        # Free bob's capacity for the tests that follow.
        await post_json(http, f"{url}/close", sue)
        await bob_ws.close()
        await op1_ws.close()
