"""An operator's day, W2: rename, pin to me, close and open new, edit and delete of sent
messages reaching the provider (the sandbox), and a customer's edit, across the real
processes through the gateway. On a line of its own (`edit`: ed1, ed2)."""

from __future__ import annotations

import random
import time
from typing import Any

import aiohttp
import pytest

from .conftest import EDIT_CHANNEL, EDIT_SECRET, Stack
from .steps import (
    dialog_of_chat,
    eventually,
    get_json,
    json_if_ok,
    post_json,
    post_update,
    set_presence,
    telegram_update,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own

DIALOGS = "/api/v1/dialogs"


async def presence(http: aiohttp.ClientSession, stack: Stack, **statuses: str) -> None:
    sue = stack.auth("sue", "supervisor")
    for operator, status in statuses.items():
        await set_presence(http, stack.url, sue, operator, status)


async def webhook(http: aiohttp.ClientSession, stack: Stack, update: dict[str, Any]) -> None:
    await post_update(http, stack.url, update, channel=EDIT_CHANNEL, secret=EDIT_SECRET)


async def customer_says(
    http: aiohttp.ClientSession, stack: Stack, chat: int, text: str
) -> dict[str, Any]:
    """The customer writes on the edit line; returns the Telegram message sent."""
    update = telegram_update(chat, "Edna Customer", text)
    await webhook(http, stack, update)
    return dict(update["message"])


async def dialog_of(
    http: aiohttp.ClientSession, stack: Stack, chat: int, *, status: str = "active", but: Any = ()
) -> dict[str, Any]:
    """The customer's dialog in `status` (not one of `but`), once the supervisor sees it."""
    return await dialog_of_chat(
        http,
        stack.url,
        stack.auth("sue", "supervisor"),
        chat,
        query=f"line=edit&tab={status}",
        where=lambda d: d["id"] not in but,
        what=f"a {status} dialog of {chat}",
    )


async def timeline(
    http: aiohttp.ClientSession, stack: Stack, dialog_id: str, who: str
) -> list[dict[str, Any]]:
    status, body = await get_json(
        http, f"{stack.url}{DIALOGS}/{dialog_id}/timeline", stack.auth(who)
    )
    assert status == 200, body
    return list(body["items"])


async def sandbox(http: aiohttp.ClientSession, stack: Stack) -> dict[str, Any]:
    body = await json_if_ok(http, f"{stack.url}/sandbox/{EDIT_CHANNEL}/sent", {})
    assert body is not None
    return dict(body)


async def provider_id_of(
    http: aiohttp.ClientSession, stack: Stack, dialog_id: str, who: str, message_id: str
) -> int:
    """The Telegram id of our message, once outbound sent it."""

    async def sent() -> int | None:
        for message in await timeline(http, stack, dialog_id, who):
            if message["id"] == message_id and message["delivery"]["provider_message_id"]:
                return int(message["delivery"]["provider_message_id"])
        return None

    return await eventually(sent, "the reply at the provider")


async def test_rename_edit_and_delete_reach_the_provider(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    await presence(http, stack, ed1="online", ed2="offline")
    ed1 = stack.auth("ed1")
    chat = random.randint(10**6, 10**7)
    said = await customer_says(http, stack, chat, "helo, my order?")
    dialog = await dialog_of(http, stack, chat)
    dialog_id = dialog["id"]
    assert dialog["assignee_id"] == "ed1"
    url = f"{stack.url}{DIALOGS}/{dialog_id}"

    # Rename: the staff's title, a system line.
    status, renamed = await post_json(http, f"{url}/rename", ed1, {"title": "Order 17"})
    assert (status, renamed["title"]) == (200, "Order 17")

    # The operator answers; outbound sends it.
    status, reply = await post_json(
        http, f"{url}/messages", ed1, {"text": "Yes, helo", "client_message_id": "e2e-1"}
    )
    assert status == 202, reply
    message_id = reply["message_id"]
    telegram_id = await provider_id_of(http, stack, dialog_id, "ed1", message_id)

    # Edit: at once in the timeline, then at the provider (editMessageText).
    status, edited = await post_json(
        http, f"{url}/messages/{message_id}", ed1, {"text": "Yes, hello"}, method="PATCH"
    )
    assert status == 200, edited
    assert (edited["text"], edited["deleted"]) == ("Yes, hello", False)
    assert edited["edited_at"] is not None

    async def edited_at_provider() -> list[Any] | None:
        found = [
            (m["message_id"], m["text"])
            for m in (await sandbox(http, stack))["edited"]
            if m["chat_id"] == chat
        ]
        return found or None

    assert await eventually(edited_at_provider, "the edit at the provider") == [
        (telegram_id, "Yes, hello")
    ]

    # Delete: the timeline keeps it, marked, with a staff line; the provider deletes it.
    status, deleted = await post_json(http, f"{url}/messages/{message_id}", ed1, method="DELETE")
    assert (status, deleted["deleted"], deleted["text"]) == (200, True, None)

    async def deleted_at_provider() -> list[Any] | None:
        found = [
            m["message_id"] for m in (await sandbox(http, stack))["deleted"] if m["chat_id"] == chat
        ]
        return found or None

    assert await eventually(deleted_at_provider, "the deletion at the provider") == [telegram_id]

    # ed1's message is not ed2's to change: ed2 works on the line, so he reads the dialog
    # (read-only), but may not write to it.
    status, body = await post_json(
        http, f"{url}/messages/{message_id}", stack.auth("ed2"), {"text": "x"}, method="PATCH"
    )
    assert (status, body["error"]["code"]) == (403, "not_allowed"), body

    # The customer edits their first message: the timeline shows the edit of that message.
    edit = telegram_update(chat, "Edna Customer", "hello, my order?")
    edit["edited_message"] = {**said, "text": "hello, my order?", "edit_date": int(time.time())}
    del edit["message"]
    await webhook(http, stack, edit)

    async def customer_edit_shown() -> dict[str, Any] | None:
        for message in await timeline(http, stack, dialog_id, "ed1"):
            if message["direction"] == "in" and message["text"] == "hello, my order?":
                return message
        return None

    shown = await eventually(customer_edit_shown, "the customer's edit")
    assert shown["edited_at"] is not None and shown["external_message_id"] == str(
        said["message_id"]
    )

    items = await timeline(http, stack, dialog_id, "ed1")
    assert [m["text"] for m in items if m["direction"] == "in"] == ["hello, my order?"]
    lines = [m["text"] for m in items if m["direction"] == "system"]
    assert "ed1 renamed the dialog to 'Order 17'" in lines
    assert "ed1 deleted a message" in lines
    [ours] = [m for m in items if m["id"] == message_id]
    assert ours["deleted"] is True and ours["edited_at"] is not None

    # Telegram refuses a deletion: the staff see it, nothing is silently lost.
    status, reply = await post_json(
        http,
        f"{url}/messages",
        ed1,
        {"text": "Too late to take back", "client_message_id": "e2e-2"},
    )
    assert status == 202, reply
    await provider_id_of(http, stack, dialog_id, "ed1", reply["message_id"])
    why = "Bad Request: message can't be deleted for everyone"
    status, _ = await post_json(
        http, f"{stack.url}/sandbox/{EDIT_CHANNEL}/faults", {}, {"status": 400, "description": why}
    )
    assert status == 200
    status, _ = await post_json(http, f"{url}/messages/{reply['message_id']}", ed1, method="DELETE")
    assert status == 200

    async def refusal_shown() -> dict[str, Any] | None:
        for message in await timeline(http, stack, dialog_id, "ed1"):
            if message["direction"] == "system" and why in (message["text"] or ""):
                return message
        return None

    refusal = await eventually(refusal_shown, "the provider's refusal in the timeline")
    assert refusal["reply_to"] == reply["message_id"]

    status, _ = await post_json(http, f"{url}/close", ed1)
    assert status == 200


async def test_pin_and_close_and_open_new(stack: Stack, http: aiohttp.ClientSession) -> None:
    # ed1 alone gets the first dialog; then ed2 comes online, next in the rotation.
    await presence(http, stack, ed1="online", ed2="offline")
    ed1 = stack.auth("ed1")
    chat = random.randint(10**6, 10**7)
    await customer_says(http, stack, chat, "hello")
    first = await dialog_of(http, stack, chat)
    assert first["assignee_id"] == "ed1"
    await presence(http, stack, ed2="online")
    url = f"{stack.url}{DIALOGS}/{first['id']}"

    status, pinned = await post_json(http, f"{url}/pin", ed1)
    assert (status, pinned["pinned_to"]) == (200, "ed1")

    # Close and open new: a new dialog of the same conversation, ed1's, already active.
    status, new = await post_json(http, f"{url}/close", ed1, {"open_new": True})
    assert status == 201, new
    assert (new["status"], new["assignee_id"], new["pinned_to"]) == ("active", "ed1", "ed1")
    status, old = await get_json(http, url, ed1)
    assert (status, old["status"]) == (200, "closed")

    # The customer's next message goes to the new dialog.
    await customer_says(http, stack, chat, "one more thing")

    async def in_new_dialog() -> bool:
        items = await timeline(http, stack, new["id"], "ed1")
        return any(m["text"] == "one more thing" for m in items if m["direction"] == "in")

    await eventually(in_new_dialog, "the message in the new dialog")

    # Closed, the customer comes back: routing offers the new dialog to ed1 (the pin), not to
    # ed2 whom the rotation would pick.
    status, _ = await post_json(http, f"{stack.url}{DIALOGS}/{new['id']}/close", ed1)
    assert status == 200
    await customer_says(http, stack, chat, "back again")
    third = await dialog_of(http, stack, chat, but=(first["id"], new["id"]))
    assert (third["assignee_id"], third["pinned_to"]) == ("ed1", "ed1")
    lines = [
        m["text"]
        for m in await timeline(http, stack, third["id"], "ed1")
        if m["direction"] == "system"
    ]
    assert "Assigned to ed1 by routing (pinned)" in lines

    status, unpinned = await post_json(http, f"{stack.url}{DIALOGS}/{third['id']}/unpin", ed1)
    assert (status, unpinned["pinned_to"]) == (200, None)
    status, _ = await post_json(http, f"{stack.url}{DIALOGS}/{third['id']}/close", ed1)
    assert status == 200
