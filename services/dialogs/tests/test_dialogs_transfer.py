"""Transfer, participants and notes over the operator API, on the real broker and Postgres:
who may do what (404 / 403 / 409 / 422), what is recorded, and who may read and write after."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from openlines.events.catalog import (
    AssignedBy,
    DialogAssigned,
    DialogTransferred,
    Direction,
    MessageAppended,
)

from .dialogs_stack import DialogsStack, Reply

pytestmark = pytest.mark.parametrize(
    "lines_file", [Path(__file__).with_name("lines_transfer.yaml")]
)


async def held_by(stack: DialogsStack, chat: str, operator: str) -> uuid.UUID:
    dialog_id = await stack.open_dialog(chat)
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", operator)).status == 200
    return dialog_id


async def transfer(stack: DialogsStack, dialog_id: uuid.UUID, who: str, **body: Any) -> Reply:
    return await stack.post(f"/api/v1/dialogs/{dialog_id}/transfer", who, json=body)


async def ids_in(stack: DialogsStack, who: str, tab: str = "all") -> set[str]:
    page = await stack.get("/api/v1/dialogs", who, tab=tab)
    return {d["id"] for d in page.body["items"]}


async def test_a_supervisor_transfers_to_an_operator_and_the_previous_one_loses_write(
    stack: DialogsStack,
) -> None:
    dialog_id = await held_by(stack, "7001", "ann")
    moved = await transfer(stack, dialog_id, "sue", to_operator="bob", reason="billing")
    assert (moved.status, moved.body["assignee_id"], moved.body["status"]) == (
        200,
        "bob",
        "active",
    )
    events = await stack.dialog_events(
        lambda seen: any(isinstance(e.payload, DialogTransferred) for e in seen)
    )
    payloads = [e.payload for e in events if e.stream_id == str(dialog_id)]
    transferred = [p for p in payloads if isinstance(p, DialogTransferred)]
    assert [(t.from_operator_id, t.to_operator_id, t.reason) for t in transferred] == [
        ("ann", "bob", "billing")
    ]
    assigned = [p for p in payloads if isinstance(p, DialogAssigned)][-1]
    assert (assigned.operator_id, assigned.assigned_by, assigned.previous_operator_id) == (
        "bob",
        AssignedBy.SUPERVISOR,
        "ann",
    )
    # ann: out of her lists; her line's dialog stays readable, read-only.
    assert str(dialog_id) not in await ids_in(stack, "ann")
    anns = await stack.dialog(dialog_id, "ann")
    assert (anns.status, anns.body["can_write"]) == (200, False)
    note = await stack.post(f"/api/v1/dialogs/{dialog_id}/notes", "ann", json={"text": "hi"})
    assert (note.status, note.code) == (403, "not_allowed")
    # bob: his now, writable.
    assert str(dialog_id) in await ids_in(stack, "bob", "active")
    assert (await stack.dialog(dialog_id, "bob")).body["can_write"] is True
    texts = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    assert texts[-1] == "sue transferred the dialog from ann to bob (billing)"


async def test_who_may_transfer_and_to_whom(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7101", "ann")
    # bob reads it (his line) but may not hand it on; zed (another line) may not even read it.
    assert (await transfer(stack, dialog_id, "bob", to_operator="carl")).code == "not_allowed"
    assert (await transfer(stack, dialog_id, "zed", to_operator="carl")).status == 404
    refused = await transfer(stack, dialog_id, "ann", to_operator="zed")
    assert (refused.status, refused.code) == (422, "not_on_line")
    for body in ({}, {"to_operator": "bob", "to_queue": True}, {"to_queue": False}):
        bad = await transfer(stack, dialog_id, "ann", **body)
        assert (bad.status, bad.code) == (422, "invalid_body"), body
    unknown = await transfer(stack, dialog_id, "ann", to_line="nowhere")
    assert (unknown.status, unknown.code) == (422, "unknown_line")
    assert (await transfer(stack, uuid.uuid4(), "sue", to_queue=True)).status == 404
    # The responsible operator hands it on herself.
    mine = await transfer(stack, dialog_id, "ann", to_operator="carl")
    assert (mine.status, mine.body["assignee_id"], mine.body["can_write"]) == (200, "carl", False)


async def test_a_transfer_to_another_line_queues_it_there(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7201", "ann")
    moved = await transfer(stack, dialog_id, "ann", to_line="vip")
    assert (moved.body["line_id"], moved.body["status"], moved.body["assignee_id"]) == (
        "vip",
        "unassigned",
        None,
    )
    assert str(dialog_id) in await ids_in(stack, "zed", "unassigned")
    assert (await stack.dialog(dialog_id, "ann")).status == 404  # not her line any more
    taken = await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "zed")
    assert (taken.status, taken.body["assignee_id"]) == (200, "zed")


async def test_a_transfer_to_the_queue_and_a_closed_dialog_reassigned(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7301", "ann")
    queued = await transfer(stack, dialog_id, "ann", to_queue=True, reason="lunch")
    assert (queued.body["status"], queued.body["assignee_id"]) == ("unassigned", None)
    assert str(dialog_id) in await ids_in(stack, "bob", "unassigned")

    closed_id = await held_by(stack, "7302", "ann")
    assert (await stack.post(f"/api/v1/dialogs/{closed_id}/close", "ann")).status == 200
    reassigned = await transfer(stack, closed_id, "sue", to_operator="bob")
    assert (reassigned.body["status"], reassigned.body["assignee_id"]) == ("closed", "bob")
    assert str(closed_id) in await ids_in(stack, "bob", "closed")
    refused = await transfer(stack, closed_id, "sue", to_queue=True)
    assert (refused.status, refused.code) == (409, "dialog_closed")


async def test_capacity_follows_the_assignee(stack: DialogsStack) -> None:
    # bob holds 2 of 2; a closed dialog does not count.
    for chat in ("7401", "7402"):
        await held_by(stack, chat, "bob")
    closed_id = await held_by(stack, "7403", "carl")
    assert (await stack.post(f"/api/v1/dialogs/{closed_id}/close", "carl")).status == 200
    dialog_id = await held_by(stack, "7404", "ann")
    full = await transfer(stack, dialog_id, "ann", to_operator="bob")
    assert (full.status, full.code) == (409, "at_capacity")
    # A closed dialog holds nobody's capacity: it may go to bob all the same.
    assert (await transfer(stack, closed_id, "carl", to_operator="bob")).status == 200
    # A supervisor may overload him, as with a take over.
    assert (await transfer(stack, dialog_id, "sue", to_operator="bob")).status == 200
    assert len(await ids_in(stack, "bob", "active")) == 3
    assert await ids_in(stack, "ann", "active") == set()


async def test_two_supervisors_transferring_at_once_one_wins(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7501", "ann")
    seen = (await stack.dialog(dialog_id, "sue")).body["assignee_id"]
    answers = await asyncio.gather(
        transfer(stack, dialog_id, "sue", to_operator="bob", expected_assignee=seen),
        transfer(stack, dialog_id, "vic", to_operator="carl", expected_assignee=seen),
    )
    outcomes = sorted((a.status, a.code) for a in answers)
    assert outcomes == [(200, None), (409, "assignee_changed")]
    [winner] = [a.body["assignee_id"] for a in answers if a.status == 200]
    loser = "carl" if winner == "bob" else "bob"
    # Capacity is exact: the dialog counts for the winner only.
    assert await ids_in(stack, winner, "active") == {str(dialog_id)}
    assert await ids_in(stack, loser, "active") == set()
    assert await ids_in(stack, "ann", "active") == set()
    events = await stack.dialog_events(
        lambda seen: any(isinstance(e.payload, DialogTransferred) for e in seen)
    )
    assert [
        e.payload.to_operator_id for e in events if isinstance(e.payload, DialogTransferred)
    ] == [winner]


async def test_join_invite_and_leave(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7601", "ann")
    base = f"/api/v1/dialogs/{dialog_id}"
    joined = await stack.post(base + "/join", "bob")
    assert (joined.status, joined.body["participants"], joined.body["can_write"]) == (
        200,
        ["bob"],
        True,
    )
    assert str(dialog_id) in await ids_in(stack, "bob", "active")  # participants list it too
    # Only a supervisor invites, anyone of the lines config; zed may not join a demo dialog.
    assert (await stack.post(base + "/join", "bob", json={"operator": "carl"})).code == (
        "not_allowed"
    )
    assert (await stack.post(base + "/join", "zed")).status == 404
    invited = await stack.post(base + "/join", "sue", json={"operator": "zed"})
    assert invited.body["participants"] == ["bob", "zed"]
    zeds = await stack.dialog(dialog_id, "zed")
    assert (zeds.status, zeds.body["can_write"]) == (200, True)
    unknown = await stack.post(base + "/join", "sue", json={"operator": "nobody"})
    assert (unknown.status, unknown.code) == (422, "unknown_operator")

    left = await stack.post(base + "/leave", "bob")
    assert left.body["participants"] == ["zed"]
    assert (await stack.dialog(dialog_id, "bob")).body["can_write"] is False
    assert (await stack.post(base + "/leave", "zed")).status == 200
    last = await stack.post(base + "/leave", "ann")
    assert (last.status, last.code) == (409, "last_operator")
    texts = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    assert texts[-4:] == [
        "bob joined the dialog",
        "sue invited zed",
        "bob left the dialog",
        "zed left the dialog",
    ]


async def test_a_supervisors_reply_into_someones_dialog_makes_them_a_participant(
    stack: DialogsStack,
) -> None:
    dialog_id = await held_by(stack, "7701", "ann")
    sent = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "sue",
        json={"text": "I'll help", "client_message_id": "s1"},
    )
    assert sent.status == 202
    view = (await stack.dialog(dialog_id, "sue")).body
    assert (view["assignee_id"], view["participants"]) == ("ann", ["sue"])


async def test_a_note_with_mentions_lets_the_mentioned_read(stack: DialogsStack) -> None:
    dialog_id = await held_by(stack, "7801", "ann")
    notes = f"/api/v1/dialogs/{dialog_id}/notes"
    assert (await stack.dialog(dialog_id, "zed")).status == 404
    added = await stack.post(
        notes, "ann", json={"text": "@zed is this VIP? cc @nobody", "mentions": ["sue"]}
    )
    assert (added.status, added.body["mentions"]) == (201, ["sue", "zed"])
    zeds = await stack.dialog(dialog_id, "zed")
    assert (zeds.status, zeds.body["can_write"]) == (200, False)
    assert str(dialog_id) not in await ids_in(stack, "zed")  # readable, not listed
    timeline = await stack.get(f"/api/v1/dialogs/{dialog_id}/timeline", "zed")
    assert timeline.body["can_write"] is False
    [note] = [m for m in timeline.body["items"] if m["direction"] == "note"]
    assert (note["author_id"], note["mentions"], note["delivery"]) == ("ann", ["sue", "zed"], None)
    # The dialog's last message (what the customer and the list see) is not the note.
    assert (await stack.dialog(dialog_id, "ann")).body["last_message"]["direction"] == "in"
    events = await stack.dialog_events(
        lambda seen: any(
            isinstance(e.payload, MessageAppended) and e.payload.direction is Direction.NOTE
            for e in seen
        )
    )
    [appended] = [
        e.payload
        for e in events
        if isinstance(e.payload, MessageAppended) and e.payload.direction is Direction.NOTE
    ]
    assert appended.mentions == ("sue", "zed")

    refused = await stack.post(notes, "ann", json={"text": "x", "mentions": ["nobody"]})
    assert (refused.status, refused.code) == (422, "unknown_operator")
    empty = await stack.post(notes, "ann", json={"text": " "})
    assert (empty.status, empty.code) == (422, "empty_message")
    assert (await stack.post(notes, "zed", json={"text": "me?"})).code == "not_allowed"
    retried = [
        await stack.post(notes, "ann", json={"text": "once", "client_message_id": "n1"})
        for _ in range(2)
    ]
    assert retried[0].body == retried[1].body
    items = (await stack.get(f"/api/v1/dialogs/{dialog_id}/timeline", "ann")).body["items"]
    assert [m["text"] for m in items if m["direction"] == "note"].count("once") == 1
