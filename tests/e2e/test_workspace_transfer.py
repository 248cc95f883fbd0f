"""An operator's day, transfer part, through the gateway: ann takes a dialog and hands it to
bob (she keeps a read-only view), joins it again and leaves, bob cannot leave his own dialog,
and a note @mentions tr3 of another line, who is pushed `mentioned` on the WebSocket and may
then open the dialog read-only. Two supervisors racing to transfer one dialog: one wins, and
routing's counts end exact."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import pytest

from .conftest import TRANSFER_CHANNEL, TRANSFER_SECRET, Stack
from .steps import (
    customer_says,
    dialog_of_chat,
    eventually,
    get_json,
    json_if_ok,
    next_ws_event,
    post_json,
    unassigned_dialog,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_transfer_participants_and_a_note_with_a_mention(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, chat = stack.url, random.randint(10**8, 10**9)
    ann, bob, tr3 = stack.auth("ann"), stack.auth("bob"), stack.auth("tr3")
    sue = stack.auth("sue", "supervisor")
    stream = f"{base.replace('http', 'ws', 1)}/api/v1/stream"
    dialog_id = await unassigned_dialog(http, base, sue, chat, "Tia Transfer", "my order?")
    url = f"{base}/api/v1/dialogs/{dialog_id}"
    bob_ws = await http.ws_connect(f"{stream}?token={stack.token('bob')}")
    tr3_ws = await http.ws_connect(f"{stream}?token={stack.token('tr3')}")
    try:
        for ws in (bob_ws, tr3_ws):
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

        # A note mentioning tr3 (of another line): pushed to tr3, who may read, not write.
        status, _ = await get_json(http, url, tr3)
        assert status == 404
        status, note = await post_json(
            http, f"{url}/notes", bob, {"text": "@tr3 is this customer yours?", "mentions": []}
        )
        assert (status, note["mentions"]) == (201, ["tr3"]), note
        mention: dict[str, Any] = await next_ws_event(
            tr3_ws, lambda m: m["type"] == "MessageAppended" and m["dialog_id"] == dialog_id
        )
        payload = mention["event"]["payload"]
        assert (mention["reason"], payload["direction"], payload["mentions"]) == (
            "mentioned",
            "note",
            ["tr3"],
        )
        status, view = await get_json(http, url, tr3)
        assert (status, view["can_write"]) == (200, False)
        status, timeline = await get_json(http, f"{url}/timeline", tr3)
        assert [m["text"] for m in timeline["items"] if m["direction"] == "note"] == [
            "@tr3 is this customer yours?"
        ]
        status, refused = await post_json(http, f"{url}/notes", tr3, {"text": "not mine"})
        assert (status, refused["error"]["code"]) == (403, "not_allowed")
    finally:
        # Free bob's capacity for the tests that follow.
        await post_json(http, f"{url}/close", sue)
        await bob_ws.close()
        await tr3_ws.close()


async def test_two_supervisors_transferring_at_once_one_wins_and_capacity_stays_exact(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, chat = stack.url, random.randint(10**8, 10**9)
    sue, boss = stack.auth("sue", "supervisor"), stack.auth("boss", "supervisor")
    # The transfer line routes by hand: the dialog waits until tr1 takes it.
    await customer_says(
        http,
        base,
        chat,
        "Rex Race",
        "who has my dialog?",
        channel=TRANSFER_CHANNEL,
        secret=TRANSFER_SECRET,
    )
    waiting = await dialog_of_chat(
        http,
        base,
        sue,
        chat,
        query="tab=unassigned&line=transfer",
        what="the dialog in the transfer line's queue",
    )
    dialog_id = waiting["id"]
    url = f"{base}/api/v1/dialogs/{dialog_id}"

    async def loads_are(expected: dict[str, int]) -> bool:
        body = await json_if_ok(http, f"{base}/api/v1/operators", sue)
        actual = {
            op["operator_id"]: op["active_dialogs"] + op["reserved_dialogs"]
            for op in (body or {}).get("operators", [])
            if op["operator_id"] in expected
        }
        return actual == expected

    try:
        status, taken = await post_json(http, f"{url}/take", stack.auth("tr1"))
        assert (status, taken["assignee_id"]) == (200, "tr1"), taken
        await eventually(lambda: loads_are({"tr1": 1, "tr2": 0, "tr3": 0}), "tr1 holds it")

        seen = taken["assignee_id"]
        answers = await asyncio.gather(
            post_json(
                http, f"{url}/transfer", sue, {"to_operator": "tr2", "expected_assignee": seen}
            ),
            post_json(
                http, f"{url}/transfer", boss, {"to_operator": "tr3", "expected_assignee": seen}
            ),
        )
        outcomes = sorted(
            (status, (body.get("error") or {}).get("code")) for status, body in answers
        )
        assert outcomes == [(200, None), (409, "assignee_changed")], answers
        [winner] = [body["assignee_id"] for status, body in answers if status == 200]
        status, view = await get_json(http, url, sue)
        assert view["assignee_id"] == winner
        expected = {"tr1": 0, "tr2": 0, "tr3": 0} | {winner: 1}
        await eventually(lambda: loads_are(expected), f"only {winner} holds it")
    finally:
        await post_json(http, f"{url}/close", sue)
    await eventually(lambda: loads_are({"tr1": 0, "tr2": 0, "tr3": 0}), "closed: nobody holds it")
