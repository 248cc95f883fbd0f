"""A provider that answers after outbound's send timeout, through the whole stack: the customer
gets the reply once, the operator sees it failed as `outcome_unknown`, and resends it."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from .conftest import Stack
from .steps import eventually, json_if_ok, post_json, unassigned_dialog

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def _dialog_taken_by_ann(stack: Stack, http: aiohttp.ClientSession, chat: int) -> str:
    sue = stack.auth("sue", "supervisor")
    # Nobody online: the dialog waits for a manual take.
    dialog_id = await unassigned_dialog(
        http, stack.url, sue, chat, "Una Known", "did you get this?"
    )
    status, body = await post_json(
        http, f"{stack.url}/api/v1/dialogs/{dialog_id}/take", stack.auth("ann")
    )
    assert status == 200, body
    return dialog_id


async def test_an_answer_after_the_send_timeout_reaches_the_customer_once(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    chat = random.randint(10**8, 10**9)
    dialog_id = await _dialog_taken_by_ann(stack, http, chat)
    ann = stack.auth("ann")
    # The case: outbound waits 10 s (send_timeout_seconds), the provider answers at 12 s.
    status, body = await post_json(
        http, f"{stack.url}/sandbox/tg-demo/faults", {}, {"status": 200, "delay_seconds": 12}
    )
    assert status == 200, body
    messages = f"{stack.url}/api/v1/dialogs/{dialog_id}/messages"
    status, first = await post_json(
        http, messages, ann, {"text": "your order ships today", "client_message_id": "c1"}
    )
    assert status == 202, first

    async def outs() -> list[dict[str, Any]]:
        body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/timeline", ann)
        return [m for m in (body or {}).get("items", []) if m["direction"] == "out"]

    async def first_settled() -> dict[str, Any] | None:
        mine = [m for m in await outs() if m["id"] == first["message_id"]]
        return mine[0] if mine and mine[0]["delivery"]["status"] != "queued" else None

    settled = await eventually(first_settled, "the reply's delivery settled", 60)
    assert settled["delivery"]["status"] == "failed", settled
    assert settled["delivery"]["reason"] == "outcome_unknown", settled

    async def at_provider() -> list[str] | None:
        body = await json_if_ok(http, f"{stack.url}/sandbox/tg-demo/sent", {})
        texts = [m["text"] for m in (body or {}).get("sent", []) if str(m["chat_id"]) == str(chat)]
        return texts or None

    # The provider shows it once its delay is over; outbound never sent it again.
    assert await eventually(at_provider, "the slow reply at the provider", 30) == [
        "your order ships today"
    ]

    # The operator's resend is a new message (a new client_message_id), sent once.
    status, again = await post_json(
        http, messages, ann, {"text": "your order ships today", "client_message_id": "c2"}
    )
    assert status == 202 and again["message_id"] != first["message_id"], again

    async def resent() -> list[str] | None:
        sent = [m for m in await outs() if m["id"] == again["message_id"]]
        if not sent or sent[0]["delivery"]["status"] != "sent":
            return None
        return await at_provider()

    assert await eventually(resent, "the resent reply delivered") == [
        "your order ships today",
        "your order ships today",
    ]
    await post_json(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/close", ann)
