"""The pure Dialog aggregate: rename, pin, close into a new dialog, edit and delete of what
an operator sent (issue 10, W2). No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from openlines.dialogs.domain import (
    NO_LIMIT,
    AtCapacity,
    ChangeNotSupported,
    Dialog,
    DialogIsClosed,
    DialogStatus,
    EmptyMessage,
    EmptyTitle,
    Load,
    MessageIsDeleted,
    MessageNotFound,
    NotAuthor,
    NotChangeable,
    PinnedToOther,
    TextTooLong,
    WindowExpired,
    describe,
)
from openlines.dialogs.domain.state import DialogState
from openlines.events.catalog import (
    AssignedBy,
    CloseReason,
    DialogAssigned,
    DialogClosed,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    DialogRenamed,
    Direction,
    MessageAppended,
    MessageChange,
    MessageDeleted,
)
from openlines.events.envelope import EventPayload
from openlines.events.testing.factories import message_received

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def record(dialog: Dialog, events: Sequence[EventPayload], at: datetime = T0) -> None:
    for event in events:
        dialog.apply(event, at)


def opened(channel_id: str = "tg-demo") -> Dialog:
    dialog = Dialog(uuid.uuid4())
    inbound = message_received(channel_id=channel_id, name="Carl", sent_at=T0)
    record(dialog, dialog.open_from_inbound(inbound, message_id=uuid.uuid4(), line_id="demo"))
    return dialog


def with_reply(author: str = "ann", channel_id: str = "tg-demo") -> tuple[Dialog, uuid.UUID]:
    """A dialog assigned to `author`, who has replied once (at T0)."""
    dialog = opened(channel_id)
    record(dialog, dialog.assign_by_routing(author, line_id="demo"))
    events = dialog.reply(
        author,
        "helo",
        message_id=uuid.uuid4(),
        client_message_id="c1",
        now=T0,
        max_text_length=4096,
    )
    record(dialog, events)
    return dialog, events[-1].message_id  # type: ignore[attr-defined]


def edit(dialog: Dialog, message_id: uuid.UUID, actor: str = "ann", **kw: object):
    return dialog.edit_outbound(
        actor,
        message_id,
        str(kw.pop("text", "hello")),
        now=kw.pop("now", T0 + timedelta(minutes=1)),  # type: ignore[arg-type]
        max_text_length=int(kw.pop("max_text_length", 4096)),  # type: ignore[call-overload]
        **kw,  # type: ignore[arg-type]
    )


# -- edit ----------------------------------------------------------------------------------


def test_the_author_edits_their_message_and_the_edit_is_recorded() -> None:
    dialog, message_id = with_reply()
    [event] = edit(dialog, message_id)
    assert isinstance(event, DialogMessageEdited)
    assert (event.message_id, event.text, event.actor_id) == (message_id, "hello", "ann")
    assert event.edited_at == T0 + timedelta(minutes=1)
    assert describe(event) is None  # the timeline shows it on the message itself (edited_at)


def test_only_the_author_or_a_supervisor_may_edit_or_delete() -> None:
    dialog, message_id = with_reply()
    with pytest.raises(NotAuthor):
        edit(dialog, message_id, actor="bob")
    with pytest.raises(NotAuthor):
        dialog.delete_outbound("bob", message_id, now=T0)
    assert edit(dialog, message_id, actor="sue", is_supervisor=True)
    assert dialog.delete_outbound("sue", message_id, now=T0, is_supervisor=True)


def test_only_operator_messages_to_the_customer_can_be_changed() -> None:
    dialog, _ = with_reply()
    customer = next(m for m in dialog.messages.values() if m.direction == Direction.IN)
    with pytest.raises(NotChangeable):
        edit(dialog, customer.message_id)
    with pytest.raises(NotChangeable):
        dialog.delete_outbound("ann", customer.message_id, now=T0)


def test_an_unknown_message_is_not_found() -> None:
    dialog, _ = with_reply()
    with pytest.raises(MessageNotFound) as refused:
        edit(dialog, uuid.uuid4())
    assert refused.value.status == 404
    with pytest.raises(MessageNotFound):
        dialog.delete_outbound("ann", uuid.uuid4(), now=T0)


def test_a_closed_dialog_keeps_its_messages_as_they_are() -> None:
    dialog, message_id = with_reply()
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    with pytest.raises(DialogIsClosed):
        edit(dialog, message_id)
    with pytest.raises(DialogIsClosed):
        dialog.delete_outbound("ann", message_id, now=T0)


def test_telegram_deletes_within_48_hours_and_edits_without_a_limit() -> None:
    dialog, message_id = with_reply()
    late = T0 + timedelta(hours=48, seconds=1)
    with pytest.raises(WindowExpired) as refused:
        dialog.delete_outbound("ann", message_id, now=late)
    assert (refused.value.status, refused.value.code) == (409, "window_expired")
    # Telegram puts no time limit on a bot editing its own messages.
    assert edit(dialog, message_id, now=T0 + timedelta(days=30))
    # The last moment of the window still deletes.
    assert dialog.delete_outbound("ann", message_id, now=T0 + timedelta(hours=48))


def test_a_channel_without_change_rules_refuses_edit_and_delete() -> None:
    dialog, message_id = with_reply(channel_id="wa-demo")
    with pytest.raises(ChangeNotSupported):
        edit(dialog, message_id)
    with pytest.raises(ChangeNotSupported):
        dialog.delete_outbound("ann", message_id, now=T0)


def test_an_edit_is_checked_like_a_reply() -> None:
    dialog, message_id = with_reply()
    with pytest.raises(EmptyMessage):
        edit(dialog, message_id, text="  ")
    with pytest.raises(TextTooLong):
        edit(dialog, message_id, text="x" * 11, max_text_length=10)


def test_a_deleted_message_is_deleted_once_and_cannot_be_edited() -> None:
    dialog, message_id = with_reply()
    [event] = dialog.delete_outbound("ann", message_id, now=T0)
    assert isinstance(event, MessageDeleted) and event.actor_id == "ann"
    assert describe(event) == "ann deleted a message"
    record(dialog, [event])
    assert dialog.messages[message_id].deleted
    assert dialog.delete_outbound("ann", message_id, now=T0) == []  # a retry
    with pytest.raises(MessageIsDeleted):
        edit(dialog, message_id)


def test_a_refused_change_shows_as_a_system_line_quoting_the_message() -> None:
    dialog, message_id = with_reply()
    line = uuid.uuid4()
    [event] = dialog.note_change_refused(
        message_id, MessageChange.DELETE, "message can't be deleted", system_message_id=line, now=T0
    )
    assert isinstance(event, MessageAppended)
    assert (event.direction, event.reply_to) == (Direction.SYSTEM, message_id)
    assert event.text is not None and "message can't be deleted" in event.text
    record(dialog, [event])
    # The same refusal redelivered adds nothing.
    again = dialog.note_change_refused(
        message_id, MessageChange.DELETE, "x", system_message_id=line, now=T0
    )
    assert again == []


def test_the_message_state_survives_a_snapshot() -> None:
    dialog, message_id = with_reply()
    record(dialog, dialog.delete_outbound("ann", message_id, now=T0))
    record(dialog, dialog.pin("ann"))
    restored = DialogState.from_snapshot(dialog.to_snapshot())
    assert restored.messages[message_id] == dialog.messages[message_id]
    assert restored.messages[message_id].author_id == "ann"
    assert restored.pinned_to == "ann"


# -- rename --------------------------------------------------------------------------------


def test_rename_sets_the_staff_title_once() -> None:
    dialog = opened()
    [event] = dialog.rename("ann", "  Order 17  ")
    assert isinstance(event, DialogRenamed) and event.title == "Order 17"
    assert describe(event) == "ann renamed the dialog to 'Order 17'"
    record(dialog, [event])
    assert dialog.title == "Order 17"
    assert dialog.rename("ann", "Order 17") == []
    with pytest.raises(EmptyTitle):
        dialog.rename("ann", "   ")


# -- pin -----------------------------------------------------------------------------------


def test_pin_to_me_and_unpin() -> None:
    dialog = opened()
    [pinned] = dialog.pin("ann")
    assert isinstance(pinned, DialogPinned)
    assert (pinned.operator_id, pinned.pinned, pinned.line_id) == ("ann", True, "demo")
    assert pinned.conversation_key == dialog.conversation_key
    record(dialog, [pinned])
    assert dialog.pinned_to == "ann"
    assert dialog.pin("ann") == []
    [unpinned] = dialog.unpin("ann")
    assert isinstance(unpinned, DialogPinned) and not unpinned.pinned
    record(dialog, [unpinned])
    assert dialog.pinned_to is None
    assert dialog.unpin("ann") == []


def test_a_pin_is_one_operators_and_a_supervisor_may_move_it() -> None:
    dialog = opened()
    record(dialog, dialog.pin("ann"))
    with pytest.raises(PinnedToOther):
        dialog.pin("bob")
    with pytest.raises(PinnedToOther):
        dialog.unpin("bob")
    moved = dialog.pin("sue", is_supervisor=True)
    assert [(e.operator_id, e.pinned) for e in moved] == [("ann", False), ("sue", True)]  # type: ignore[attr-defined]
    record(dialog, moved)
    assert dialog.pinned_to == "sue"


def test_the_customers_next_dialog_keeps_the_pin() -> None:
    dialog = Dialog(uuid.uuid4())
    events = dialog.open_from_inbound(
        message_received(sent_at=T0), message_id=uuid.uuid4(), line_id="demo", pinned_to="ann"
    )
    assert [type(e) for e in events] == [DialogOpened, DialogPinned, MessageAppended]
    record(dialog, events)
    assert dialog.pinned_to == "ann"


# -- close and open new ---------------------------------------------------------------------


def test_close_and_open_new_continues_the_conversation_assigned_to_the_actor() -> None:
    old, _ = with_reply("ann")
    record(old, old.pin("ann"))
    record(old, old.close_for_new("ann", is_supervisor=False))
    assert old.status == DialogStatus.CLOSED
    new = Dialog(uuid.uuid4())
    events = new.open_after(old, "ann", load=Load(active=0, limit=3))
    opened_, assigned, pinned = events
    assert isinstance(opened_, DialogOpened)
    assert opened_.previous_dialog_id == old.id
    assert (opened_.conversation_key, opened_.line_id) == (old.conversation_key, "demo")
    assert opened_.external_chat_id == "42" and opened_.external_user_id == "42"
    assert isinstance(assigned, DialogAssigned)
    assert (assigned.operator_id, assigned.assigned_by) == ("ann", AssignedBy.OPERATOR)
    assert isinstance(pinned, DialogPinned) and pinned.operator_id == "ann"
    record(new, events)
    assert (new.status, new.assignee_id, new.title) == (DialogStatus.ACTIVE, "ann", old.title)
    assert new.open_after(old, "ann") == []  # opened once


def test_close_and_open_new_needs_an_open_dialog_and_room() -> None:
    old, _ = with_reply("ann")
    [closed] = old.close_for_new("ann", is_supervisor=False)
    assert isinstance(closed, DialogClosed)
    record(old, [closed])
    with pytest.raises(DialogIsClosed):
        old.close_for_new("ann", is_supervisor=False)
    with pytest.raises(AtCapacity):
        Dialog(uuid.uuid4()).open_after(old, "ann", load=Load(active=3, limit=3))
    assert Dialog(uuid.uuid4()).open_after(old, "ann", load=NO_LIMIT)


def test_an_operator_closing_an_unassigned_dialog_into_a_new_one_takes_it_first() -> None:
    dialog = opened()
    events = dialog.close_for_new("ann", is_supervisor=False)
    assert [type(e) for e in events] == [DialogAssigned, DialogClosed]
