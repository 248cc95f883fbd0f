"""Timers across the real processes: a customer's message nobody answers reaches the SLA
warning and breach, is re-routed to the other operator, and the dialog closes for inactivity;
each is pushed on the stream and told in the timeline.

On a line of its own (`timers`, operators tm1 and tm2; conftest) whose thresholds are 30/60 s
(SLA), 90 s (re-route) and 150 s (inactivity), on the test-only time scale of 0.1: the stack's
own clocks reach them in 3, 6, 9 and 15 s.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from .conftest import TIMERS_CHANNEL, TIMERS_SECRET, Stack
from .steps import (
    customer_says,
    dialog_of_chat,
    eventually,
    get_json,
    json_if_ok,
    next_ws_event,
    set_presence,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


def about(dialog_id: str, kind: str, **fields: Any) -> Any:
    def matches(frame: dict[str, Any]) -> bool:
        payload = frame.get("event", {}).get("payload", {})
        return (
            frame.get("type") == kind
            and payload.get("dialog_id") == dialog_id
            and all(payload.get(k) == v for k, v in fields.items())
        )

    return matches


async def test_sla_markers_reroute_and_auto_close(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, sue = stack.url, stack.auth("sue", "supervisor")
    chat = random.randint(10**6, 10**7)
    for who in ("tm1", "tm2"):
        await set_presence(http, base, stack.auth(who), who, "online")

    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token('sue', 'supervisor')}")
    try:
        await customer_says(
            http,
            base,
            chat,
            "Tim Waiting",
            "Is anybody there?",
            channel=TIMERS_CHANNEL,
            secret=TIMERS_SECRET,
        )
        dialog = await dialog_of_chat(
            http,
            base,
            sue,
            chat,
            where=lambda d: d["assignee_id"],
            what="the dialog assigned to tm1 or tm2",
        )
        dialog_id, holder = dialog["id"], dialog["assignee_id"]
        other = "tm2" if holder == "tm1" else "tm1"

        # Nobody answers: the warning (3 s), then the breach (6 s), for the holder.
        warning = await next_ws_event(ws, about(dialog_id, "SlaWarningReached"))
        assert warning["event"]["payload"]["operator_id"] == holder
        assert warning["event"]["payload"]["threshold_seconds"] == 30
        await next_ws_event(ws, about(dialog_id, "SlaBreached"))
        status, body = await get_json(http, f"{base}/api/v1/dialogs/{dialog_id}", sue)
        assert status == 200 and body["sla"]["state"] == "breach", body  # agrees with the marker

        # 9 s without an answer: back to the queue, and on to the other operator.
        await next_ws_event(ws, about(dialog_id, "DialogTransferred", reason="no_answer"))
        await next_ws_event(ws, about(dialog_id, "DialogAssigned", operator_id=other))

        # 15 s without a message: closed for inactivity.
        await next_ws_event(ws, about(dialog_id, "DialogClosed", reason="auto_inactive"))
    finally:
        await ws.close()

    status, timeline = await get_json(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", sue)
    assert status == 200, timeline
    system = [item["text"] for item in timeline["items"] if item["direction"] == "system"]
    expected = [
        f"SLA warning: the customer's message has waited 30 s without an answer ({holder})",
        f"SLA breached: the customer's message has waited 60 s without an answer ({holder})",
        f"Returned to the queue: {holder} did not answer in time",
        f"Assigned to {other} by routing (round_robin)",
        "Closed automatically: no message for the line's inactivity time (auto_inactive)",
    ]
    assert [line for line in system if line in expected] == expected, system

    # The closed dialog holds nobody's capacity any more.
    async def freed() -> bool:
        body = await json_if_ok(http, f"{base}/api/v1/operators", sue)
        load = {
            op["operator_id"]: (op["active_dialogs"], op["reserved_dialogs"])
            for op in (body or {}).get("operators", [])
        }
        return load.get("tm1") == load.get("tm2") == (0, 0)

    await eventually(freed, "tm1's and tm2's capacity freed")
