"""Routing's AssignDialog, the take race, and who may see and act on a dialog."""

from __future__ import annotations

import asyncio
import uuid

from openlines.events.catalog import AssignDialog, DialogAssigned, DialogClosed
from openlines.events.envelope import Envelope
from openlines.events.topics import DIALOG_COMMANDS

from .dialogs_stack import DialogsStack


async def assign(stack: DialogsStack, dialog_id: uuid.UUID, operator: str) -> Envelope:
    command = AssignDialog(
        dialog_id=dialog_id, operator_id=operator, line_id="demo", strategy="round_robin"
    )
    return await stack.publish(DIALOG_COMMANDS, command, stream_id=str(dialog_id), event_id=None)


async def test_assign_dialog_makes_it_active_for_that_operator_only(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("2001")
    await assign(stack, dialog_id, "ann")
    # A stale command for a dialog that is no longer unassigned is ignored.
    await stack.wait_handled(await assign(stack, dialog_id, "bob"))

    page = await stack.get("/api/v1/dialogs", "ann", tab="active")
    assert [d["id"] for d in page.body["items"]] == [str(dialog_id)]
    ann_view = (await stack.dialog(dialog_id, "ann")).body
    assert (ann_view["status"], ann_view["assignee_id"]) == ("active", "ann")
    timeline = await stack.timeline(dialog_id, "ann")
    assert timeline[-1]["direction"] == "system"
    assert timeline[-1]["text"] == "Assigned to ann by routing (round_robin)"

    events = await stack.dialog_events(
        lambda seen: sum(isinstance(e.payload, DialogAssigned) for e in seen) >= 1
    )
    assigned_events = [e.payload for e in events if isinstance(e.payload, DialogAssigned)]
    assert [(e.operator_id, e.assigned_by) for e in assigned_events] == [("ann", "routing")]

    # bob: not his dialog, not unassigned any more -> gone from his lists; as an operator of
    # its line he may open it read-only (Uspacy), but not write to it.
    assert (await stack.get("/api/v1/dialogs", "bob", tab="active")).body["items"] == []
    assert (await stack.get("/api/v1/dialogs", "bob", tab="all")).body["items"] == []
    bob_view = await stack.dialog(dialog_id, "bob")
    assert (bob_view.status, bob_view.body["can_write"]) == (200, False)
    bob_timeline = await stack.get(f"/api/v1/dialogs/{dialog_id}/timeline", "bob")
    assert (bob_timeline.status, bob_timeline.body["can_write"]) == (200, False)
    # Marking it read is his own business (unread is per operator): reading is enough.
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/read", "bob")).status == 200
    writes = ("close", "spam", "messages")
    body = {"text": "hi", "client_message_id": "b1"}
    for path in writes:
        reply = await stack.post(
            f"/api/v1/dialogs/{dialog_id}/{path}", "bob", json=body if path == "messages" else None
        )
        assert (reply.status, reply.code) == (403, "not_allowed"), path
    # zed works on no line: for him it does not exist.
    for reply in (
        await stack.dialog(dialog_id, "zed"),
        await stack.get(f"/api/v1/dialogs/{dialog_id}/timeline", "zed"),
        *[
            await stack.post(
                f"/api/v1/dialogs/{dialog_id}/{path}",
                "zed",
                json=body if path == "messages" else None,
            )
            for path in writes
        ],
    ):
        assert (reply.status, reply.code) == (404, "not_found")
    assert (await stack.dialog(dialog_id, "ann")).body["status"] == "active"

    # The supervisor sees it in Active and can act on it.
    page = await stack.get("/api/v1/dialogs", "sue", tab="active")
    assert [d["id"] for d in page.body["items"]] == [str(dialog_id)]
    closed = await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "sue")
    assert (closed.status, closed.body["status"], closed.body["assignee_id"]) == (
        200,
        "closed",
        "ann",
    )
    events = await stack.dialog_events(
        lambda seen: any(isinstance(e.payload, DialogClosed) for e in seen)
    )
    [close] = [e.payload for e in events if isinstance(e.payload, DialogClosed)]
    assert (close.actor_id, close.operator_id, close.reason) == ("sue", "ann", "operator")


async def test_two_operators_taking_one_dialog_get_one_200_and_one_409(
    stack: DialogsStack,
) -> None:
    dialog_ids = [await stack.open_dialog(f"21{i:02d}") for i in range(5)]
    for dialog_id in dialog_ids:
        ann, bob = await asyncio.gather(
            stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann"),
            stack.post(f"/api/v1/dialogs/{dialog_id}/take", "bob"),
        )
        assert sorted([ann.status, bob.status]) == [200, 409], (ann, bob)
        winner, loser = (ann, bob) if ann.status == 200 else (bob, ann)
        assert loser.code == "already_assigned"
        # The loser may no longer see the dialog: the answer must not say who holds it.
        assert winner.body["assignee_id"] not in loser.body["error"]["message"]
        assert winner.body["status"] == "active"
        holder = winner.body["assignee_id"]
        assert (await stack.dialog(dialog_id, holder)).body["assignee_id"] == holder
        # Done with it: the winner stays under max_dialogs (2) for the next round.
        assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/close", holder)).status == 200

    def assignments(seen: list[Envelope]) -> list[str]:
        return [e.stream_id for e in seen if isinstance(e.payload, DialogAssigned)]

    events = await stack.dialog_events(lambda seen: len(assignments(seen)) >= len(dialog_ids))
    # Exactly one assignment per dialog ever reached the topic.
    assert sorted(assignments(events)) == sorted(str(d) for d in dialog_ids)


async def test_take_twice_is_harmless_and_a_supervisor_takes_over(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("2201")
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")).status == 200
    again = await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")
    assert (again.status, again.body["assignee_id"]) == (200, "ann")
    over = await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "sue")
    assert (over.status, over.body["assignee_id"]) == (200, "sue")
    # ann lost it: gone from her lists, and read-only when she opens it (her line's dialog).
    assert (await stack.get("/api/v1/dialogs", "ann")).body["items"] == []
    lost = await stack.dialog(dialog_id, "ann")
    assert (lost.status, lost.body["can_write"]) == (200, False)
    texts = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    assert texts == ["ann took the dialog", "sue took the dialog over from ann"]


async def test_close_spam_and_reopen(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("2301")
    base = f"/api/v1/dialogs/{dialog_id}"
    assert (await stack.post(base + "/reopen", "ann")).code == "not_closed"
    spam = await stack.post(base + "/spam", "ann")
    assert (spam.status, spam.body["status"]) == (200, "spam")
    assert (await stack.get("/api/v1/dialogs", "sue", tab="spam")).body["items"][0]["id"] == str(
        dialog_id
    )
    reopened = await stack.post(base + "/reopen", "sue")
    assert (reopened.status, reopened.body["status"], reopened.body["assignee_id"]) == (
        200,
        "active",
        "sue",
    )
    assert (await stack.post(base + "/close", "sue")).body["status"] == "closed"
    assert (await stack.post(base + "/close", "sue")).status == 200  # idempotent
    texts = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    # ann's spam on the unassigned dialog accepted it first (it stays hers).
    assert texts == [
        "ann took the dialog",
        "Marked as spam by ann",
        "Reopened by sue",
        "Closed by sue",
    ]


async def test_only_the_conversations_latest_dialog_reopens(stack: DialogsStack) -> None:
    # The customer's next message goes to the conversation's latest dialog: a reopened
    # older one would never hear from them again.
    first = await stack.open_dialog("2302")
    assert (await stack.post(f"/api/v1/dialogs/{first}/close", "sue")).status == 200
    second = await stack.open_dialog("2302", "me again")
    assert second != first
    assert (await stack.post(f"/api/v1/dialogs/{second}/close", "sue")).status == 200
    refused = await stack.post(f"/api/v1/dialogs/{first}/reopen", "sue")
    assert (refused.status, refused.code) == (409, "newer_dialog_exists")
    assert (await stack.dialog(first)).body["status"] == "closed"
    reopened = await stack.post(f"/api/v1/dialogs/{second}/reopen", "sue")
    assert (reopened.status, reopened.body["status"]) == (200, "active")
    # ... and the customer's next message lands in it.
    await stack.customer_writes("2302", "still there?")
    await stack.eventually(lambda: _last_text_is(stack, second, "still there?"))


async def _last_text_is(stack: DialogsStack, dialog_id: uuid.UUID, text: str) -> bool:
    items = [m for m in await stack.timeline(dialog_id) if m["direction"] == "in"]
    return bool(items) and items[-1]["text"] == text


async def test_an_operator_closing_an_unassigned_dialog_accepts_it_and_keeps_it(
    stack: DialogsStack,
) -> None:
    # "Accept and close": ann closes (or marks as spam) a dialog nobody held. It must stay
    # hers, visible to her and in her Closed / Spam tab, not vanish from her view.
    for chat, action, tab in (("2401", "close", "closed"), ("2402", "spam", "spam")):
        dialog_id = await stack.open_dialog(chat)
        done = await stack.post(f"/api/v1/dialogs/{dialog_id}/{action}", "ann")
        assert (done.status, done.body["status"], done.body["assignee_id"]) == (200, tab, "ann")
        mine = await stack.dialog(dialog_id, "ann")
        assert (mine.status, mine.body["assignee_id"]) == (200, "ann")
        page = await stack.get("/api/v1/dialogs", "ann", tab=tab)
        assert [d["id"] for d in page.body["items"]] == [str(dialog_id)]
        bobs = await stack.dialog(dialog_id, "bob")  # his line's: read-only
        assert (bobs.status, bobs.body["can_write"]) == (200, False)
        texts = [
            m["text"] for m in await stack.timeline(dialog_id, "ann") if m["direction"] == "system"
        ]
        closing = "Closed by ann" if action == "close" else "Marked as spam by ann"
        assert texts == ["ann took the dialog", closing]

    # Both facts in one append, in order: routing counts the take and then the close.
    def of_ann(seen: list[Envelope]) -> list[object]:
        return [e.payload for e in seen if isinstance(e.payload, DialogAssigned | DialogClosed)]

    events = await stack.dialog_events(lambda seen: len(of_ann(seen)) >= 4)
    assert [
        (type(e).__name__, e.operator_id, getattr(e, "assigned_by", None))  # type: ignore[attr-defined]
        for e in of_ann(events)
    ] == [
        ("DialogAssigned", "ann", "operator"),
        ("DialogClosed", "ann", None),
    ] * 2


async def test_a_supervisor_closing_an_unassigned_dialog_leaves_it_unassigned(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("2403")
    done = await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "sue")
    assert (done.status, done.body["status"], done.body["assignee_id"]) == (200, "closed", None)
    texts = [m["text"] for m in await stack.timeline(dialog_id) if m["direction"] == "system"]
    assert texts == ["Closed by sue"]


async def test_an_operator_may_mark_her_closed_dialog_as_spam(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("2404")
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")).status == 200
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "ann")).status == 200
    spam = await stack.post(f"/api/v1/dialogs/{dialog_id}/spam", "ann")
    assert (spam.status, spam.body["status"], spam.body["assignee_id"]) == (200, "spam", "ann")
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/spam", "ann")).status == 200
    page = await stack.get("/api/v1/dialogs", "ann", tab="spam")
    assert [d["id"] for d in page.body["items"]] == [str(dialog_id)]
