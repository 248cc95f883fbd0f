"""Races, provider retries, bad input, access and provider back-pressure, through the gateway."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from .conftest import Stack
from .steps import (
    SECRET,
    customer_says,
    eventually,
    get_json,
    json_if_ok,
    post_json,
    telegram_update,
    unassigned_dialog,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def _unassigned_dialog(stack: Stack, http: aiohttp.ClientSession, chat: int) -> str:
    """A dialog nobody is online to take (everyone offline first)."""
    return await unassigned_dialog(http, stack.url, stack.auth("sue", "supervisor"), chat)


async def test_two_operators_take_one_dialog_exactly_one_wins(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    dialog_id = await _unassigned_dialog(stack, http, random.randint(10**8, 10**9))
    url = f"{stack.url}/api/v1/dialogs/{dialog_id}/take"
    results = await asyncio.gather(
        post_json(http, url, stack.auth("ann")), post_json(http, url, stack.auth("bob"))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    loser = next(body for status, body in results if status == 409)
    assert loser["error"]["code"] == "already_assigned"
    winner = next(body for status, body in results if status == 200)
    other = "bob" if winner["assignee_id"] == "ann" else "ann"
    # The loser, of the same line, reads the winner's dialog read-only and may not write.
    status, body = await get_json(
        http, f"{stack.url}/api/v1/dialogs/{dialog_id}", stack.auth(other)
    )
    assert (status, body["can_write"]) == (200, False)
    status, body = await post_json(
        http,
        f"{stack.url}/api/v1/dialogs/{dialog_id}/messages",
        stack.auth(other),
        {"text": "mine!", "client_message_id": "x"},
    )
    assert (status, body["error"]["code"]) == (403, "not_allowed"), body
    status, _ = await post_json(
        http, f"{stack.url}/api/v1/dialogs/{dialog_id}/close", stack.auth(winner["assignee_id"])
    )
    assert status == 200


async def test_webhook_delivered_twice_gives_one_message_and_bad_input_loses_nothing(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    chat = random.randint(10**8, 10**9)
    url = f"{stack.url}/webhooks/telegram/tg-demo"
    good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    update = telegram_update(chat, "Dee Dup", "only once please")
    for _ in range(2):  # the provider retries the same update
        async with http.post(url, json=update, headers=good) as resp:
            assert resp.status == 200
    bad_cases = [
        (
            url,
            {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            telegram_update(chat, "X", "bad token"),
            401,
            "invalid_secret",
        ),
        (
            f"{stack.url}/webhooks/telegram/tg-nope",
            good,
            telegram_update(chat, "X", "nope"),
            404,
            "unknown_channel",
        ),
    ]
    for target, headers, body, status, code in bad_cases:
        async with http.post(target, json=body, headers=headers) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
    async with http.post(
        url, data=b"{not json", headers={**good, "Content-Type": "application/json"}
    ) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "malformed_json")
    async with http.post(url, data=b"x" * (2 << 20), headers=good) as resp:
        assert resp.status == 413
    # A later, valid message still gets through: nothing else was lost.
    await customer_says(http, stack.url, chat, "Dee Dup", "second message")
    sue = stack.auth("sue", "supervisor")
    found: list[str] = []

    async def both_messages() -> list | None:
        body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs?tab=all&q=Dee", sue)
        mine = [
            d for d in (body or {}).get("items", []) if d["customer"]["external_id"] == str(chat)
        ]
        if not mine:
            return None
        found.append(mine[0]["id"])
        timeline = await json_if_ok(
            http, f"{stack.url}/api/v1/dialogs/{mine[0]['id']}/timeline", sue
        )
        texts = [m["text"] for m in (timeline or {}).get("items", []) if m["direction"] == "in"]
        return texts if "second message" in texts else None

    assert await eventually(both_messages, "both customer messages") == [
        "only once please",
        "second message",
    ]
    status, _ = await post_json(http, f"{stack.url}/api/v1/dialogs/{found[-1]}/close", sue)
    assert status == 200  # leave no dialog waiting in the shared queue


async def test_provider_429_then_200_delivers_exactly_once(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    chat = random.randint(10**8, 10**9)
    dialog_id = await _unassigned_dialog(stack, http, chat)
    status, body = await post_json(
        http,
        f"{stack.url}/sandbox/tg-demo/faults",
        {},
        {"status": 429, "times": 1, "retry_after": 1},
    )
    assert status in (200, 201), body
    ann = stack.auth("ann")
    status, taken = await post_json(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/take", ann)
    assert status == 200, taken
    status, reply = await post_json(
        http,
        f"{stack.url}/api/v1/dialogs/{dialog_id}/messages",
        ann,
        {"text": "after a 429", "client_message_id": f"r-{chat}"},
    )
    assert status == 202, reply

    async def sent() -> dict | None:
        body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/timeline", ann)
        outs = [m for m in (body or {}).get("items", []) if m["direction"] == "out"]
        return outs[0] if outs and outs[0]["delivery"]["status"] == "sent" else None

    await eventually(sent, "the reply delivered after the 429")
    body = await json_if_ok(http, f"{stack.url}/sandbox/tg-demo/sent", {})
    texts = [m["text"] for m in body["sent"] if str(m["chat_id"]) == str(chat)]
    assert texts == ["after a 429"]
    await post_json(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/close", ann)


async def test_a_customer_quoting_the_operators_reply_keeps_reply_to(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    # ann answers; outbound sends it to the sandbox, which gives it a Telegram message id; the
    # customer quotes that answer (reply_to_message) and the timeline links the two.
    chat = random.randint(10**8, 10**9)
    dialog_id = await _unassigned_dialog(stack, http, chat)
    ann = stack.auth("ann")
    timeline_url = f"{stack.url}/api/v1/dialogs/{dialog_id}/timeline"
    status, reply = await post_json(
        http,
        f"{stack.url}/api/v1/dialogs/{dialog_id}/messages",
        ann,
        {"text": "Which size?", "client_message_id": f"q-{chat}"},
    )
    assert status == 202, reply

    async def sent() -> dict | None:
        body = await json_if_ok(http, timeline_url, ann)
        outs = [m for m in (body or {}).get("items", []) if m["direction"] == "out"]
        return outs[0] if outs and outs[0]["delivery"]["status"] == "sent" else None

    ours = await eventually(sent, "the reply sent to the sandbox")
    update = telegram_update(chat, "Rae Race", "Size M, please")
    update["message"]["reply_to_message"] = {
        "message_id": int(ours["delivery"]["provider_message_id"]),
        "date": update["message"]["date"],
        "chat": update["message"]["chat"],
    }
    async with http.post(
        f"{stack.url}/webhooks/telegram/tg-demo",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def quoted() -> dict | None:
        body = await json_if_ok(http, timeline_url, ann)
        found = [m for m in (body or {}).get("items", []) if m["text"] == "Size M, please"]
        return found[0] if found else None

    answer = await eventually(quoted, "the customer's quoting message")
    assert answer["reply_to"] == ours["id"] == reply["message_id"]
    await post_json(http, f"{stack.url}/api/v1/dialogs/{dialog_id}/close", ann)
