"""Per-operator unread and pins on the pure Dialog aggregate: no I/O."""

from __future__ import annotations

import uuid
from datetime import timedelta

from openlines.dialogs.domain import Dialog
from openlines.events.catalog import CloseReason, DialogPinned, DialogRead, Direction

from .test_dialogs_domain import T0, opened, received, record, reply


def _customer_writes(dialog: Dialog, external_id: str) -> None:
    record(dialog, dialog.receive(received(external_id), message_id=uuid.uuid4()))


def test_one_operators_read_leaves_everyone_elses_unread() -> None:
    dialog = opened()
    _customer_writes(dialog, "2")
    assert [dialog.unread_for(op) for op in ("ann", "bob")] == [2, 2]
    record(dialog, dialog.mark_read("ann"))
    assert [dialog.unread_for(op) for op in ("ann", "bob")] == [0, 2]
    assert dialog.mark_read("ann") == []  # nothing left for ann: nothing recorded
    assert len(dialog.mark_read("bob")) == 1  # bob still has his to read
    _customer_writes(dialog, "3")
    assert [dialog.unread_for(op) for op in ("ann", "bob")] == [1, 3]


def test_a_read_names_the_latest_customer_message() -> None:
    dialog = opened()
    _customer_writes(dialog, "2")
    latest = [m for m in dialog.messages.values() if m.direction == Direction.IN][-1]
    [event] = dialog.mark_read("bob")
    assert event == DialogRead(
        dialog_id=dialog.id, operator_id="bob", up_to_message_id=latest.message_id
    )


def test_a_reply_reads_for_its_author_only() -> None:
    dialog = opened()
    _customer_writes(dialog, "2")
    record(dialog, reply(dialog, "ann"))
    assert [dialog.unread_for(op) for op in ("ann", "bob")] == [0, 2]
    _customer_writes(dialog, "3")
    assert dialog.unread_for("ann") == 1


def test_replaying_the_events_gives_the_same_marks_and_pins() -> None:
    dialog = opened()
    _customer_writes(dialog, "2")
    history = [*dialog.mark_read("bob")]
    history.append(DialogPinned(dialog_id=dialog.id, operator_id="ann", pinned=True))
    history.append(DialogPinned(dialog_id=dialog.id, operator_id="bob", pinned=True))
    history.append(DialogPinned(dialog_id=dialog.id, operator_id="ann", pinned=False))
    record(dialog, history)
    assert dialog.read_marks == {"bob": 2}
    # One operator holds the pin: bob's took it over, ann's unpin no longer concerns it.
    assert dialog.pinned_to == "bob"
    restored = Dialog.from_snapshot(dialog.to_snapshot())
    assert (restored.read_marks, restored.pinned_to, restored.inbound_count) == (
        {"bob": 2},
        "bob",
        2,
    )
    assert restored.updated_at == T0


def test_closed_at_is_when_it_last_stopped_being_open() -> None:
    dialog = opened()
    later = T0 + timedelta(minutes=5)
    record(dialog, dialog.close("ann", CloseReason.OPERATOR), later)
    assert dialog.closed_at == later
    record(dialog, dialog.reopen("ann"), later + timedelta(minutes=1))
    assert dialog.closed_at is None
    assert Dialog.from_snapshot(dialog.to_snapshot()).closed_at is None
