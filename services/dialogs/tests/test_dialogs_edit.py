"""Rename, pin, close into a new dialog, and operators' edits and deletions, through the
dialogs service on the real broker and Postgres (issue 10, W2)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from openlines.dialogs.api import edit as edit_api
from openlines.dialogs.handlers import opened_dialog_id
from openlines.events.catalog import (
    DialogAssigned,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    MessageChange,
    MessageDeleted,
    MessageDispatchFailed,
)
from openlines.events.envelope import Envelope, utc_now
from openlines.events.topics import OUTBOUND

from .dialogs_stack import DialogsStack, Reply

BASE = "/api/v1/dialogs"


async def answered(stack: DialogsStack, chat: str, who: str = "ann") -> tuple[uuid.UUID, str]:
    """A dialog `who` took by answering; returns it and the id of the answer."""
    dialog_id = await stack.open_dialog(chat, "hi")
    reply = await stack.post(
        f"{BASE}/{dialog_id}/messages", who, json={"text": "helo", "client_message_id": "c1"}
    )
    assert reply.status == 202, reply.body
    return dialog_id, reply.body["message_id"]


def of_type(seen: list[Envelope], kind: type[Any], dialog_id: uuid.UUID) -> list[Any]:
    return [
        e.payload for e in seen if isinstance(e.payload, kind) and e.payload.dialog_id == dialog_id
    ]


async def test_rename_sets_the_staff_title_and_leaves_a_system_line(stack: DialogsStack) -> None:
    dialog_id, _ = await answered(stack, "8001")
    renamed = await stack.post(f"{BASE}/{dialog_id}/rename", "ann", json={"title": "Order 17"})
    assert (renamed.status, renamed.body["title"]) == (200, "Order 17")
    assert (await stack.post(f"{BASE}/{dialog_id}/rename", "ann", json={"title": " "})).code == (
        "empty_title"
    )
    assert (await stack.post(f"{BASE}/{dialog_id}/rename", "ann", json={})).status == 422
    # bob works on the line: he reads ann's dialog, but may not write to it without joining;
    # zed works on no line: for him it does not exist.
    refused = await stack.post(f"{BASE}/{dialog_id}/rename", "bob", json={"title": "x"})
    assert (refused.status, refused.code) == (403, "not_allowed")
    assert (
        await stack.post(f"{BASE}/{dialog_id}/rename", "zed", json={"title": "x"})
    ).status == 404
    lines = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    assert "ann renamed the dialog to 'Order 17'" in lines


async def test_pin_to_me_follows_the_customer_into_their_next_dialog(stack: DialogsStack) -> None:
    dialog_id, _ = await answered(stack, "8002")
    pinned = await stack.post(f"{BASE}/{dialog_id}/pin", "ann")
    assert (pinned.status, pinned.body["pinned_to"]) == (200, "ann")
    assert (await stack.post(f"{BASE}/{dialog_id}/pin", "ann")).status == 200  # again: no-op
    # A supervisor may move the pin; nobody else may lift it then.
    assert (await stack.post(f"{BASE}/{dialog_id}/pin", "sue")).body["pinned_to"] == "sue"
    assert (await stack.post(f"{BASE}/{dialog_id}/unpin", "ann")).code == "pinned_to_other"
    assert (await stack.post(f"{BASE}/{dialog_id}/pin", "ann")).code == "pinned_to_other"
    assert (await stack.post(f"{BASE}/{dialog_id}/unpin", "sue")).body["pinned_to"] is None
    assert (await stack.post(f"{BASE}/{dialog_id}/pin", "ann")).body["pinned_to"] == "ann"

    # The customer comes back after the close: the new dialog keeps the pin.
    assert (await stack.post(f"{BASE}/{dialog_id}/close", "ann")).status == 200
    env = await stack.customer_writes("8002", "me again")
    next_id = opened_dialog_id(env.event_id)
    await stack.eventually(lambda: stack._exists(next_id))
    assert (await stack.dialog(next_id)).body["pinned_to"] == "ann"

    seen = await stack.dialog_events(lambda s: bool(of_type(s, DialogPinned, next_id)))
    pins = of_type(seen, DialogPinned, dialog_id)
    assert [(p.operator_id, p.pinned) for p in pins] == [
        ("ann", True),
        ("ann", False),
        ("sue", True),
        ("sue", False),
        ("ann", True),
    ]
    assert {(p.line_id, p.conversation_key) for p in pins} == {("demo", "tg-demo:8002")}


async def test_close_and_open_new_continues_the_conversation_in_a_dialog_of_the_caller(
    stack: DialogsStack,
) -> None:
    dialog_id, _ = await answered(stack, "8003")
    new = await stack.post(f"{BASE}/{dialog_id}/close", "ann", json={"open_new": True})
    assert new.status == 201, new.body
    new_id = uuid.UUID(new.body["id"])
    assert new_id != dialog_id
    assert (new.body["status"], new.body["assignee_id"]) == ("active", "ann")
    assert (await stack.dialog(dialog_id, "ann")).body["status"] == "closed"
    # Closed already: the same again is refused, not a second new dialog.
    again = await stack.post(f"{BASE}/{dialog_id}/close", "ann", json={"open_new": True})
    assert again.code == "dialog_closed"
    assert (
        await stack.post(f"{BASE}/{dialog_id}/close", "ann", json={"open_new": 1})
    ).status == 422

    # The customer's next message goes to the new dialog.
    env = await stack.customer_writes("8003", "one more thing")
    await stack.wait_handled(env)
    assert [m["text"] for m in await stack.timeline(new_id, "ann") if m["direction"] == "in"] == [
        "one more thing"
    ]

    seen = await stack.dialog_events(lambda s: bool(of_type(s, DialogAssigned, new_id)))
    [opened] = of_type(seen, DialogOpened, new_id)
    assert (opened.previous_dialog_id, opened.conversation_key) == (dialog_id, "tg-demo:8003")
    [assigned] = of_type(seen, DialogAssigned, new_id)
    assert (assigned.operator_id, assigned.actor_id) == ("ann", "ann")


async def test_the_author_edits_and_deletes_a_sent_message(stack: DialogsStack) -> None:
    dialog_id, message_id = await answered(stack, "8004")
    path = f"{BASE}/{dialog_id}/messages/{message_id}"

    edited = await stack.request("PATCH", path, "ann", json={"text": "hello"})
    assert edited.status == 200, edited.body
    assert (edited.body["text"], edited.body["id"]) == ("hello", message_id)
    assert edited.body["edited_at"] is not None and edited.body["deleted"] is False
    # A supervisor may change anyone's message; bob reads the dialog but may not write to it;
    # zed does not even see it.
    assert (await stack.request("PATCH", path, "sue", json={"text": "Hello!"})).status == 200
    assert (await stack.request("PATCH", path, "bob", json={"text": "x"})).code == "not_allowed"
    assert (await stack.request("PATCH", path, "zed", json={"text": "x"})).status == 404
    assert (await stack.request("PATCH", path, "ann", json={"text": " "})).code == "empty_message"

    deleted = await stack.request("DELETE", path, "ann")
    assert deleted.status == 200, deleted.body
    assert (deleted.body["deleted"], deleted.body["text"]) == (True, None)
    assert (await stack.request("DELETE", path, "ann")).status == 200  # a retry
    assert (await stack.request("PATCH", path, "ann", json={"text": "x"})).code == "message_deleted"

    timeline = await stack.timeline(dialog_id, "ann")
    [message] = [m for m in timeline if m["id"] == message_id]
    assert message["deleted"] is True and message["edited_at"] is not None
    [line] = [m for m in timeline if m["direction"] == "system" and m["reply_to"] == message_id]
    assert line["text"] == "ann deleted a message"

    def done(seen: list[Envelope]) -> bool:
        return bool(of_type(seen, MessageDeleted, dialog_id))

    seen = await stack.dialog_events(done)
    edits = of_type(seen, DialogMessageEdited, dialog_id)
    assert [(e.text, e.actor_id) for e in edits] == [("hello", "ann"), ("Hello!", "sue")]
    [gone] = of_type(seen, MessageDeleted, dialog_id)
    assert (str(gone.message_id), gone.actor_id) == (message_id, "ann")


def refused(reply: Reply) -> tuple[int, str | None]:
    return reply.status, reply.code


async def test_what_may_not_be_changed_is_refused(
    stack: DialogsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog_id, message_id = await answered(stack, "8005")
    path = f"{BASE}/{dialog_id}/messages"
    unknown = await stack.request("PATCH", f"{path}/{uuid.uuid4()}", "ann", json={"text": "x"})
    assert refused(unknown) == (404, "message_not_found")
    assert refused(await stack.request("DELETE", f"{path}/not-a-uuid", "ann")) == (
        404,
        "message_not_found",
    )
    [customer] = [m["id"] for m in await stack.timeline(dialog_id) if m["direction"] == "in"]
    assert refused(await stack.request("DELETE", f"{path}/{customer}", "ann")) == (
        409,
        "not_changeable",
    )

    # Past Telegram's 48 hours a deletion is refused here, before any provider call.
    later = utc_now() + timedelta(hours=48, minutes=1)
    monkeypatch.setattr(edit_api, "utc_now", lambda: later)
    assert refused(await stack.request("DELETE", f"{path}/{message_id}", "ann")) == (
        409,
        "window_expired",
    )
    monkeypatch.undo()

    assert (await stack.post(f"{BASE}/{dialog_id}/close", "ann")).status == 200
    closed = await stack.request("PATCH", f"{path}/{message_id}", "ann", json={"text": "x"})
    assert refused(closed) == (409, "dialog_closed")


async def test_a_provider_refusal_shows_in_the_timeline(stack: DialogsStack) -> None:
    dialog_id, message_id = await answered(stack, "8006")
    assert (
        await stack.request("DELETE", f"{BASE}/{dialog_id}/messages/{message_id}", "ann")
    ).status == 200
    failure = MessageDispatchFailed(
        dialog_id=dialog_id,
        message_id=uuid.UUID(message_id),
        channel_id="tg-demo",
        reason="Bad Request: message can't be deleted for everyone",
        attempts=1,
        retryable=False,
        change=MessageChange.DELETE,
    )
    env = await stack.publish(OUTBOUND, failure, stream_id=str(dialog_id), event_id=None)
    await stack.wait_handled(env)
    timeline = await stack.timeline(dialog_id, "ann")
    [line] = [m for m in timeline if m["direction"] == "system" and "not applied" in m["text"]]
    assert line["reply_to"] == message_id
    assert "message can't be deleted for everyone" in line["text"]
    # The message's own delivery is untouched: it was sent.
    [message] = [m for m in timeline if m["id"] == message_id]
    assert message["delivery"]["status"] == "queued"
