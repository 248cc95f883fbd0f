"""Transfer, participants, notes and mentions on the pure Dialog aggregate, with the access
policy's verdicts before and after (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from openlines.dialogs.access import (
    facts,
    require_actable,
    require_readable,
    require_transferable,
)
from openlines.dialogs.domain import (
    NO_LIMIT,
    AssigneeChanged,
    AtCapacity,
    Dialog,
    DialogIsClosed,
    DialogNotFound,
    DialogStatus,
    EmptyMessage,
    LastOperator,
    Load,
    LoadNeeded,
    NotAllowed,
    NotOnLine,
    describe,
)
from openlines.events.catalog import (
    AssignedBy,
    CloseReason,
    DialogAssigned,
    DialogTransferred,
    Direction,
    MessageAppended,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.envelope import EventPayload
from openlines.events.testing.factories import message_received
from openlines.kit.access import Role, Scope

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEMO_OPERATORS = ("ann", "bob")
# ann and bob work on demo; carl on vip only; sue supervises every line.
ANN = Scope("ann", member_lines=frozenset({"demo"}))
BOB = Scope("bob", member_lines=frozenset({"demo"}))
CARL = Scope("carl", member_lines=frozenset({"vip"}))
SUE = Scope("sue", Role.SUPERVISOR, supervised_lines=None)


def record(dialog: Dialog, events: Sequence[EventPayload]) -> Sequence[EventPayload]:
    for event in events:
        dialog.apply(event, T0)
    return events


def assigned_to(operator: str | None) -> Dialog:
    dialog = Dialog(uuid.uuid4())
    received = message_received(text="hi", external_message_id="1", name="Carl", sent_at=T0)
    record(dialog, dialog.open_from_inbound(received, message_id=uuid.uuid4(), line_id="demo"))
    if operator is not None:
        record(dialog, dialog.assign_by_routing(operator, line_id="demo"))
    return dialog


def to_operator(
    dialog: Dialog,
    target: str,
    *,
    actor: str = "sue",
    load: Load | None = NO_LIMIT,
    expected: str | None = None,
) -> Sequence[EventPayload]:
    return dialog.transfer_to_operator(
        actor,
        target,
        line_operators=DEMO_OPERATORS,
        by_supervisor=actor == "sue",
        reason="knows the product",
        expected_assignee=expected,
        load=load,
    )


def note(
    dialog: Dialog, actor: str, text: str = "look", mentions: Sequence[str] = ()
) -> Sequence[EventPayload]:
    return dialog.add_note(
        actor, text, message_id=uuid.uuid4(), mentions=mentions, now=T0, max_text_length=100
    )


# -- transfer to an operator --------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "by"), [("sue", AssignedBy.SUPERVISOR), ("ann", AssignedBy.OPERATOR)]
)
def test_a_transfer_to_an_operator_records_the_transfer_and_the_assignment(
    actor: str, by: AssignedBy
) -> None:
    dialog = assigned_to("ann")
    events = to_operator(dialog, "bob", actor=actor)
    assert events == [
        DialogTransferred(
            dialog_id=dialog.id,
            from_operator_id="ann",
            to_operator_id="bob",
            from_line_id="demo",
            reason="knows the product",
            actor_id=actor,
        ),
        DialogAssigned(
            dialog_id=dialog.id,
            operator_id="bob",
            assigned_by=by,
            actor_id=actor,
            previous_operator_id="ann",
            line_id="demo",
        ),
    ]
    record(dialog, events)
    assert (dialog.assignee_id, dialog.status) == ("bob", DialogStatus.ACTIVE)
    assert to_operator(dialog, "bob") == []  # already there: nothing to record
    # One line in the timeline, not two.
    assert [describe(e) for e in events] == [
        f"{actor} transferred the dialog from ann to bob (knows the product)",
        None,
    ]


def test_only_the_responsible_operator_or_a_supervisor_may_transfer() -> None:
    dialog = assigned_to("ann")
    require_transferable(ANN, dialog)
    require_transferable(SUE, dialog)
    with pytest.raises(NotAllowed):
        require_transferable(BOB, dialog)  # reads it (his line), may not hand it on
    with pytest.raises(DialogNotFound):
        require_transferable(CARL, dialog)  # may not even read it
    queued = assigned_to(None)
    with pytest.raises(NotAllowed):
        require_transferable(ANN, queued)  # the queue is routing's or a supervisor's


def test_the_target_must_serve_the_line() -> None:
    with pytest.raises(NotOnLine):
        to_operator(assigned_to("ann"), "carl")


def test_a_transfer_guarded_by_the_assignee_the_caller_saw_loses_a_race() -> None:
    dialog = assigned_to("ann")
    record(dialog, to_operator(dialog, "bob", expected="ann"))
    # The second supervisor also saw ann: told, instead of silently overriding bob.
    with pytest.raises(AssigneeChanged):
        to_operator(dialog, "ann", expected="ann")
    with pytest.raises(AssigneeChanged):
        dialog.transfer_to_queue("sue", expected_assignee="ann")
    assert to_operator(dialog, "ann", expected="bob") != []


def test_the_target_needs_room_on_an_open_dialog() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(LoadNeeded):
        to_operator(dialog, "bob", load=None)
    with pytest.raises(AtCapacity):
        to_operator(dialog, "bob", load=Load(active=2, limit=2))
    assert to_operator(dialog, "bob", load=Load(active=1, limit=2)) != []


def test_a_closed_dialog_is_reassigned_and_stays_closed_holding_no_capacity() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    kept = facts(dialog)
    # Closed dialogs count against nobody's max_dialogs: the target's load is never asked.
    events = record(dialog, to_operator(dialog, "bob", load=None))
    assert (dialog.assignee_id, dialog.status) == ("bob", DialogStatus.CLOSED)
    # The other services' view of it agrees (notify, crm-link follow the same facts).
    for event in events:
        kept = kept.after(event)
    assert kept == facts(dialog)
    record(dialog, dialog.transfer_to_line("sue", "vip"))
    assert (dialog.line_id, dialog.assignee_id, dialog.status) == ("vip", None, "closed")
    with pytest.raises(DialogIsClosed):
        dialog.transfer_to_queue("sue")


# -- access after a transfer -------------------------------------------------------------


def test_the_previous_assignee_loses_access_unless_a_participant() -> None:
    # ann outside any line (say, moved to another team): only her membership gave her access.
    ann_elsewhere = Scope("ann")
    dialog = assigned_to("ann")
    require_actable(ann_elsewhere, dialog)
    record(dialog, to_operator(dialog, "bob"))
    with pytest.raises(DialogNotFound):
        require_readable(ann_elsewhere, dialog)
    # ann of the line keeps a read-only view; her list no longer shows it.
    require_readable(ANN, dialog)
    with pytest.raises(NotAllowed):
        require_actable(ANN, dialog)
    assert not ANN.can_see(facts(dialog))

    kept = assigned_to("ann")
    record(kept, kept.join("ann", actor_id="sue"))  # invited beside herself: no-op
    assert kept.participants == []
    record(kept, kept.join("bob", actor_id="bob"))
    record(kept, to_operator(kept, "bob"))
    with pytest.raises(DialogNotFound):
        require_readable(ann_elsewhere, kept)
    other = assigned_to("ann")
    record(other, other.join("ann", actor_id="ann"))
    record(other, other.join("carl", actor_id="sue"))
    record(other, to_operator(other, "bob"))
    require_actable(Scope("carl"), other)  # an invited participant writes, whatever his lines


# -- to a line, to the queue ------------------------------------------------------------------


def test_a_transfer_to_another_line_queues_it_there() -> None:
    dialog = assigned_to("ann")
    events = record(dialog, dialog.transfer_to_line("ann", "vip", reason="VIP customer"))
    assert events == [
        DialogTransferred(
            dialog_id=dialog.id,
            from_operator_id="ann",
            to_line_id="vip",
            from_line_id="demo",
            reason="VIP customer",
            actor_id="ann",
        )
    ]
    assert (dialog.line_id, dialog.assignee_id, dialog.status) == ("vip", None, "unassigned")
    assert describe(events[0]) == "ann moved the dialog to line vip (VIP customer)"
    # Its new line's operators see it in their queue; ann no longer even reads it.
    assert CARL.can_see(facts(dialog))
    with pytest.raises(DialogNotFound):
        require_readable(ANN, dialog)


def test_a_transfer_to_the_queue_is_a_return_to_queue() -> None:
    dialog = assigned_to("ann")
    events = record(dialog, dialog.transfer_to_queue("ann", reason="lunch"))
    assert events == [
        DialogTransferred(
            dialog_id=dialog.id,
            from_operator_id="ann",
            to_line_id="demo",
            from_line_id="demo",
            reason="lunch",
            actor_id="ann",
        )
    ]
    assert (dialog.assignee_id, dialog.status) == (None, DialogStatus.UNASSIGNED)
    assert dialog.transfer_to_queue("ann") == []  # waiting already
    # The same line named as the target is the same thing.
    again = assigned_to("ann")
    assert [type(e) for e in again.transfer_to_line("sue", "demo")] == [DialogTransferred]


# -- participants -----------------------------------------------------------------------------


def test_join_and_leave() -> None:
    dialog = assigned_to("ann")
    joined = record(dialog, dialog.join("bob", actor_id="bob"))
    assert joined == [ParticipantJoined(dialog_id=dialog.id, operator_id="bob", actor_id="bob")]
    assert dialog.join("bob", actor_id="bob") == []
    require_actable(BOB, dialog)  # participants write like the assignee
    assert describe(joined[0]) == "bob joined the dialog"
    invited = ParticipantJoined(dialog_id=dialog.id, operator_id="carl", actor_id="sue")
    assert describe(invited) == "sue invited carl"

    left = record(dialog, dialog.leave("bob"))
    assert left == [ParticipantLeft(dialog_id=dialog.id, operator_id="bob", actor_id="bob")]
    assert dialog.leave("bob") == []  # not on it any more
    with pytest.raises(NotAllowed):
        require_actable(BOB, dialog)


def test_the_last_operator_cannot_leave() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(LastOperator):
        dialog.leave("ann")
    record(dialog, dialog.join("bob", actor_id="bob"))
    with pytest.raises(LastOperator):
        dialog.leave("ann")  # the assignee hands it on by a transfer instead
    queued = assigned_to(None)
    record(queued, queued.join("bob", actor_id="bob"))
    with pytest.raises(LastOperator):
        queued.leave("bob")


# -- notes and mentions -------------------------------------------------------------------


def test_a_note_mentions_and_lets_the_mentioned_read() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(DialogNotFound):
        require_readable(CARL, dialog)
    events = record(dialog, note(dialog, "ann", "@carl can you check?", mentions=["carl"]))
    [appended] = events
    assert isinstance(appended, MessageAppended)
    assert (appended.direction, appended.author_id, appended.mentions) == (
        Direction.NOTE,
        "ann",
        ("carl",),
    )
    assert dialog.mentioned == ["carl"]
    # A note is neither the customer's nor a reply: the SLA and unread stay as they were.
    assert (dialog.unread_for("ann"), dialog.waiting_since) == (1, T0)
    require_readable(CARL, dialog)
    with pytest.raises(NotAllowed):
        require_actable(CARL, dialog)
    assert not CARL.can_see(facts(dialog))  # read, but not in his lists
    with pytest.raises(EmptyMessage):
        note(dialog, "ann", "  ")


def test_a_supervisors_note_in_someones_dialog_makes_them_a_participant() -> None:
    dialog = assigned_to("ann")
    assert [type(e) for e in record(dialog, note(dialog, "sue"))] == [
        ParticipantJoined,
        MessageAppended,
    ]
    assert dialog.participants == ["sue"]
    assert [type(e) for e in note(dialog, "ann")] == [MessageAppended]


def test_a_retried_note_is_recorded_once() -> None:
    dialog = assigned_to("ann")
    message_id = uuid.uuid4()

    def add() -> Sequence[EventPayload]:
        return dialog.add_note(
            "ann", "x", message_id=message_id, mentions=(), now=T0, max_text_length=10
        )

    record(dialog, add())
    assert add() == []


def test_a_participant_handed_the_dialog_is_its_assignee_only() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.join("bob", actor_id="bob"))
    record(dialog, dialog.join("carl", actor_id="sue"))
    kept = facts(dialog)
    events = record(dialog, to_operator(dialog, "bob"))
    assert (dialog.assignee_id, dialog.participants) == ("bob", ["carl"])
    # ann, no participant, is off it; the facts notify and crm-link keep agree.
    assert not dialog.is_on_dialog("ann")
    for event in events:
        kept = kept.after(event)
    assert kept == facts(dialog)
