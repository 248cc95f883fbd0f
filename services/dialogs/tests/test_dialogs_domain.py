"""The pure Dialog aggregate and the access policy: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from openlines.dialogs.access import require_actable, require_readable, require_takeable
from openlines.dialogs.domain import (
    NO_LIMIT,
    AlreadyAssigned,
    AtCapacity,
    Dialog,
    DialogChanged,
    DialogIsClosed,
    DialogNotClosed,
    DialogNotFound,
    DialogNotOpen,
    DialogStatus,
    EmptyMessage,
    Load,
    LoadNeeded,
    NewerDialogExists,
    NotAllowed,
    NotAssignedToYou,
    SlaState,
    TextTooLong,
    UnknownMessage,
    delivery_advances,
    describe,
    sla_state,
)
from openlines.events.catalog import (
    AssignedBy,
    CloseReason,
    DeliveryStatus,
    DialogAssigned,
    DialogClosed,
    DialogLinkedToCrm,
    DialogOpened,
    DialogRead,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    MessageDeliveryUpdated,
    MessageReceived,
    ParticipantJoined,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import EventPayload
from openlines.events.testing.factories import dialog_assigned, message_received
from openlines.kit.access import Scope

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# The rules themselves are tested once, in libs/kit/tests/test_access.py.
ANN = Scope("ann", member_lines=frozenset({"demo"}))
BOB = Scope("bob", member_lines=frozenset({"demo"}))
OUTSIDER = Scope("eve", member_lines=frozenset({"other"}))


def received(external_id: str = "1", *, at: datetime = T0, text: str = "hi") -> MessageReceived:
    return message_received(text=text, external_message_id=external_id, name="Carl", sent_at=at)


def record(dialog: Dialog, events: Sequence[EventPayload], at: datetime = T0) -> None:
    for event in events:
        dialog.apply(event, at)


def opened(at: datetime = T0) -> Dialog:
    dialog = Dialog(uuid.uuid4())
    record(
        dialog,
        dialog.open_from_inbound(received(at=at), message_id=uuid.uuid4(), line_id="demo"),
        at,
    )
    return dialog


def assigned_to(operator: str) -> Dialog:
    dialog = opened()
    record(dialog, dialog.assign_by_routing(operator, line_id="demo"))
    return dialog


def reply(dialog: Dialog, actor: str = "ann", text: str = "hello", client: str = "c1", **kw):
    return dialog.reply(
        actor,
        text,
        message_id=uuid.uuid5(dialog.id, f"{actor}:{client}"),
        client_message_id=client,
        now=T0,
        max_text_length=kw.pop("max_text_length", 4096),
        **kw,
    )


# -- opening and inbound -------------------------------------------------------------------


def test_inbound_opens_an_unassigned_dialog_with_the_customer_message() -> None:
    dialog = Dialog(uuid.uuid4())
    events = dialog.open_from_inbound(received(), message_id=uuid.uuid4(), line_id="demo")
    assert [type(e) for e in events] == [DialogOpened, MessageAppended]
    assert isinstance(events[1], MessageAppended) and events[1].direction == Direction.IN
    record(dialog, events)
    assert dialog.status == DialogStatus.UNASSIGNED
    assert (dialog.version, dialog.unread_for("ann"), dialog.waiting_since) == (2, 1, T0)
    assert dialog.title == "Carl"
    # Reprocessing the same inbound event opens nothing more.
    assert dialog.open_from_inbound(received(), message_id=uuid.uuid4(), line_id="demo") == []


def test_the_same_provider_message_is_appended_once() -> None:
    dialog = opened()
    assert dialog.receive(received("1"), message_id=uuid.uuid4()) == []
    events = dialog.receive(received("2"), message_id=uuid.uuid4())
    assert len(events) == 1
    record(dialog, events)
    assert dialog.inbound_count == 2


def test_a_customer_quoting_our_message_or_theirs_keeps_reply_to() -> None:
    dialog = assigned_to("ann")
    [first_in] = [m.message_id for m in dialog.messages.values()]
    answer = reply(dialog)
    record(dialog, answer)
    out_id = answer[-1].message_id
    record(dialog, dialog.update_delivery(out_id, DeliveryStatus.SENT, provider_message_id="900"))

    def quoting(external_id: str, quoted: str) -> MessageAppended:
        message = received(external_id).model_copy(update={"reply_to_external_id": quoted})
        [appended] = dialog.receive(message, message_id=uuid.uuid4())
        assert isinstance(appended, MessageAppended)
        return appended

    assert quoting("901", "900").reply_to == out_id  # the operator's message (provider id)
    assert quoting("902", "1").reply_to == first_in  # their own message
    assert quoting("903", "77").reply_to is None  # not in this dialog


def test_inbound_to_a_closed_dialog_is_refused_so_a_new_one_opens() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    with pytest.raises(DialogIsClosed):
        dialog.receive(received("2"), message_id=uuid.uuid4())


def test_decisions_on_a_dialog_that_does_not_exist_raise_not_found() -> None:
    with pytest.raises(DialogNotFound):
        Dialog(uuid.uuid4()).take("ann", may_take_over=False)


# -- assignment ----------------------------------------------------------------------------


def test_routing_assigns_only_an_open_unassigned_dialog_of_its_line() -> None:
    dialog = opened()
    with pytest.raises(DialogNotOpen):
        dialog.assign_by_routing("ann", line_id="other-line")
    events = dialog.assign_by_routing("ann", line_id="demo", strategy="round_robin")
    assert events == [dialog_assigned(dialog.id, "ann", strategy="round_robin")]
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id) == (DialogStatus.ACTIVE, "ann")
    assert dialog.assign_by_routing("ann", line_id="demo") == []  # redelivered command
    with pytest.raises(DialogNotOpen):
        dialog.assign_by_routing("bob", line_id="demo")
    # A re-route names the assignee it expects to replace.
    rerouted = dialog.assign_by_routing("bob", line_id="demo", expected_operator_id="ann")
    assert isinstance(rerouted[0], DialogAssigned) and rerouted[0].previous_operator_id == "ann"


def test_routing_does_not_assign_a_closed_dialog() -> None:
    dialog = opened()
    record(dialog, dialog.close(None, CloseReason.AUTO_UNASSIGNED))
    with pytest.raises(DialogNotOpen):
        dialog.assign_by_routing("ann", line_id="demo")


def test_take_is_refused_when_someone_else_holds_the_dialog_but_a_supervisor_takes_over() -> None:
    dialog = opened()
    record(dialog, dialog.take("ann", may_take_over=False))
    assert dialog.assignee_id == "ann"
    assert dialog.take("ann", may_take_over=False) == []
    with pytest.raises(AlreadyAssigned):
        dialog.take("bob", may_take_over=False)
    events = dialog.take("sue", may_take_over=True)
    assert isinstance(events[0], DialogAssigned)
    assert (events[0].assigned_by, events[0].previous_operator_id) == (
        AssignedBy.SUPERVISOR,
        "ann",
    )


def test_a_manual_take_respects_the_operators_max_dialogs() -> None:
    dialog = opened()
    with pytest.raises(LoadNeeded):
        dialog.take("ann", may_take_over=False, load=None)
    with pytest.raises(AtCapacity):
        dialog.take("ann", may_take_over=False, load=Load(active=2, limit=2))
    with pytest.raises(AtCapacity):
        reply(dialog, "ann", load=Load(active=3, limit=2))
    assert len(dialog.take("ann", may_take_over=False, load=Load(active=1, limit=2))) == 1
    assert len(dialog.take("ann", may_take_over=False, load=NO_LIMIT)) == 1
    closed = assigned_to("ann")
    record(closed, closed.close("ann", CloseReason.OPERATOR))
    with pytest.raises(AtCapacity):
        closed.reopen("ann", load=Load(active=2, limit=2))
    # A reply by the assignee takes nothing: no load needed.
    record(dialog, dialog.take("ann", may_take_over=False))
    assert dialog.take("ann", may_take_over=False, load=None) == []
    assert len(reply(dialog, "ann", load=None)) == 1


def test_a_closed_dialog_cannot_be_taken() -> None:
    dialog = opened()
    record(dialog, dialog.mark_spam("ann"))
    with pytest.raises(DialogIsClosed):
        dialog.take("ann", may_take_over=False)


# -- replies -------------------------------------------------------------------------------


def test_the_first_operator_to_answer_becomes_responsible() -> None:
    dialog = opened()
    events = reply(dialog)
    assert [type(e) for e in events] == [DialogAssigned, MessageAppended]
    out = events[1]
    assert isinstance(out, MessageAppended)
    assert (out.direction, out.status, out.author_id) == (
        Direction.OUT,
        DeliveryStatus.QUEUED,
        "ann",
    )
    assert (out.channel_id, out.conversation_key) == ("tg-demo", "tg-demo:42")
    record(dialog, events)
    assert (dialog.assignee_id, dialog.waiting_since, dialog.unread_for("ann")) == ("ann", None, 0)


def test_a_reply_is_idempotent_per_client_message_id() -> None:
    dialog = assigned_to("ann")
    record(dialog, reply(dialog, client="same"))
    assert reply(dialog, client="same", text="again") == []
    assert len(reply(dialog, client="other")) == 1


def test_client_message_ids_are_each_authors_own() -> None:
    # Two operators' clients both count from 1: the supervisor's "1" is a new message.
    dialog = assigned_to("ann")
    record(dialog, reply(dialog, client="1"))
    events = reply(dialog, actor="sue", client="1", text="supervisor here", is_supervisor=True)
    assert [e.text for e in events if isinstance(e, MessageAppended)] == ["supervisor here"]


def test_reply_validation() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(EmptyMessage):
        reply(dialog, text="   ")
    with pytest.raises(TextTooLong):
        reply(dialog, text="x" * 11, max_text_length=10)
    assert len(reply(dialog, text="x" * 10, max_text_length=10)) == 1
    with pytest.raises(UnknownMessage):
        reply(dialog, reply_to=uuid.uuid4())
    quoted = next(iter(dialog.messages))
    assert len(reply(dialog, reply_to=quoted)) == 1


def test_only_the_assignee_a_participant_or_a_supervisor_replies() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(NotAssignedToYou):
        reply(dialog, actor="bob")
    # A supervisor's write into someone's dialog makes them a participant of it.
    written = reply(dialog, actor="sue", is_supervisor=True)
    assert [type(e) for e in written] == [ParticipantJoined, MessageAppended]
    record(dialog, written)
    assert dialog.participants == ["sue"]
    again = reply(dialog, actor="sue", client="c2", is_supervisor=True)
    assert [type(e) for e in again] == [MessageAppended]


def test_a_reply_on_a_closed_dialog_is_refused() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    with pytest.raises(DialogIsClosed):
        reply(dialog)


# -- SLA -----------------------------------------------------------------------------------


def test_sla_waits_from_the_last_unanswered_message_through_reassignment() -> None:
    dialog = opened(T0)
    second = T0 + timedelta(minutes=1)
    record(dialog, dialog.receive(received("2", at=second), message_id=uuid.uuid4()))
    assert dialog.waiting_since == second  # RetailCRM: from the customer's last message
    record(dialog, dialog.assign_by_routing("ann", line_id="demo"))
    record(dialog, dialog.take("sue", may_take_over=True))
    assert dialog.waiting_since == second  # reassignment does not reset it
    record(dialog, reply(dialog, actor="sue"))
    assert dialog.waiting_since is None  # an operator reply clears it
    later = T0 + timedelta(minutes=5)
    record(dialog, dialog.receive(received("3", at=later), message_id=uuid.uuid4()))
    assert dialog.waiting_since == later


def test_a_timers_command_is_ignored_once_the_dialog_changed() -> None:
    dialog = assigned_to("ann")
    decided_at = dialog.version
    record(dialog, dialog.mark_read("ann"))  # anything recorded since the timer decided
    with pytest.raises(DialogChanged):
        dialog.require_version(decided_at)
    dialog.require_version(dialog.version)  # unchanged: the command applies
    dialog.require_version(None)  # an operator's command carries no version


def sla_marker(
    dialog: Dialog, kind: type[SlaWarningReached | SlaBreached] = SlaWarningReached
) -> SlaWarningReached | SlaBreached:
    assert dialog.waiting_since is not None
    return kind(
        dialog_id=dialog.id,
        line_id="demo",
        operator_id="ann",
        waiting_since=dialog.waiting_since,
        threshold_seconds=30 if kind is SlaWarningReached else 60,
    )


def test_an_sla_marker_shows_in_the_timeline_while_the_message_waits() -> None:
    dialog = assigned_to("ann")
    line_id = uuid.uuid4()
    events = dialog.note_sla(sla_marker(dialog), system_message_id=line_id, now=T0)
    assert [(e.direction, e.text) for e in events if isinstance(e, MessageAppended)] == [
        (
            Direction.SYSTEM,
            "SLA warning: the customer's message has waited 30 s without an answer (ann)",
        )
    ]
    record(dialog, events)
    assert dialog.note_sla(sla_marker(dialog), system_message_id=line_id, now=T0) == []
    stale = sla_marker(dialog, SlaBreached)
    record(dialog, reply(dialog))  # answered before the marker arrived: no line
    assert dialog.note_sla(stale, system_message_id=uuid.uuid4(), now=T0) == []


def test_timer_closes_and_reroutes_say_why_in_the_timeline() -> None:
    closed = DialogClosed(
        dialog_id=uuid.uuid4(), reason=CloseReason.AUTO_INACTIVE, line_id="demo", operator_id="ann"
    )
    assert describe(closed) == (
        "Closed automatically: no message for the line's inactivity time (auto_inactive)"
    )
    returned = DialogTransferred(
        dialog_id=uuid.uuid4(),
        from_operator_id="ann",
        to_line_id="demo",
        from_line_id="demo",
        reason="no_answer",
        actor_id="routing",
    )
    assert describe(returned) == "Returned to the queue: ann did not answer in time"


def test_sla_state_thresholds() -> None:
    assert sla_state(None, T0, 120, 300) == SlaState.OK
    assert sla_state(T0, T0 + timedelta(seconds=119), 120, 300) == SlaState.OK
    assert sla_state(T0, T0 + timedelta(seconds=120), 120, 300) == SlaState.WARNING
    assert sla_state(T0, T0 + timedelta(seconds=300), 120, 300) == SlaState.BREACH


# -- close, spam, reopen, queue ------------------------------------------------------------


def closed_by_ann(dialog: Dialog, reason: CloseReason) -> DialogClosed:
    """What ann closing (or marking as spam) the demo-line dialog she holds records."""
    return DialogClosed(
        dialog_id=dialog.id, reason=reason, actor_id="ann", line_id="demo", operator_id="ann"
    )


def test_close_keeps_the_assignee_and_is_idempotent() -> None:
    dialog = assigned_to("ann")
    events = dialog.close("ann", CloseReason.OPERATOR)
    assert events == [closed_by_ann(dialog, CloseReason.OPERATOR)]
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id, dialog.waiting_since) == (
        DialogStatus.CLOSED,
        "ann",
        None,
    )
    assert dialog.close("ann", CloseReason.OPERATOR) == []


def test_a_closed_dialog_may_still_be_marked_as_spam() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    events = dialog.mark_spam("ann", take_first=True)
    assert events == [closed_by_ann(dialog, CloseReason.SPAM)]
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id) == (DialogStatus.SPAM, "ann")
    assert dialog.mark_spam("ann") == []


@pytest.mark.parametrize("reason", [CloseReason.OPERATOR, CloseReason.SPAM])
def test_an_operator_closing_an_unassigned_dialog_takes_it_first(reason: CloseReason) -> None:
    dialog = opened()
    if reason == CloseReason.SPAM:
        events = dialog.mark_spam("ann", take_first=True)
    else:
        events = dialog.close("ann", reason, take_first=True)
    assert events == [
        dialog_assigned(dialog.id, "ann", by=AssignedBy.OPERATOR, actor_id="ann"),
        closed_by_ann(dialog, reason),
    ]
    record(dialog, events)
    assert dialog.assignee_id == "ann"
    # Still hers to see, in her Closed (or Spam) tab.
    require_readable(ANN, dialog)


def test_a_close_without_take_first_leaves_an_unassigned_dialog_unassigned() -> None:
    # What a supervisor's close does: closed by them, nobody's dialog.
    dialog = opened()
    events = dialog.close("sue", CloseReason.OPERATOR)
    assert [type(e) for e in events] == [DialogClosed]
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id) == (DialogStatus.CLOSED, None)


def test_spam_is_a_forced_close_and_reopen_returns_to_active_for_the_actor() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(DialogNotClosed):
        dialog.reopen("ann")
    record(dialog, dialog.mark_spam("ann"))
    assert dialog.status == DialogStatus.SPAM
    assert dialog.mark_spam("ann") == []
    events = dialog.reopen("bob")
    assert isinstance(events[0], DialogReopened)
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id) == (DialogStatus.ACTIVE, "bob")


def test_only_the_conversations_latest_dialog_reopens() -> None:
    dialog = assigned_to("ann")
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    with pytest.raises(NewerDialogExists):
        dialog.reopen("ann", latest_dialog_id=uuid.uuid4())
    assert isinstance(dialog.reopen("ann", latest_dialog_id=dialog.id)[0], DialogReopened)


def test_return_to_queue_unassigns_but_keeps_the_sla_clock() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(DialogNotOpen):
        dialog.return_to_queue("no_answer", operator_id="bob")
    events = dialog.return_to_queue("no_answer", operator_id="ann")
    assert isinstance(events[0], DialogTransferred) and events[0].to_line_id == "demo"
    record(dialog, events)
    assert (dialog.status, dialog.assignee_id, dialog.waiting_since) == (
        DialogStatus.UNASSIGNED,
        None,
        T0,
    )
    with pytest.raises(DialogNotOpen):
        dialog.return_to_queue("no_answer")


# -- delivery, CRM, read -------------------------------------------------------------------


def test_delivery_statuses_only_move_forward() -> None:
    dialog = assigned_to("ann")
    record(dialog, reply(dialog))
    message_id = uuid.uuid5(dialog.id, "ann:c1")
    later = T0 + timedelta(hours=1)
    sent = dialog.update_delivery(message_id, DeliveryStatus.SENT, provider_message_id="77")
    assert sent == [
        MessageDeliveryUpdated(
            dialog_id=dialog.id,
            message_id=message_id,
            status=DeliveryStatus.SENT,
            provider_message_id="77",
        )
    ]
    record(dialog, sent, later)
    assert dialog.updated_at == T0  # delivery news does not move the dialog up the list
    assert dialog.messages[message_id].provider_message_id == "77"
    record(dialog, dialog.update_delivery(message_id, DeliveryStatus.READ))
    assert dialog.update_delivery(message_id, DeliveryStatus.DELIVERED) == []
    assert dialog.update_delivery(message_id, DeliveryStatus.READ) == []
    inbound = next(m for m in dialog.messages.values() if m.direction == Direction.IN)
    with pytest.raises(UnknownMessage):
        dialog.update_delivery(inbound.message_id, DeliveryStatus.SENT)


def test_delivery_transitions() -> None:
    assert delivery_advances(DeliveryStatus.QUEUED, DeliveryStatus.FAILED)
    assert delivery_advances(DeliveryStatus.FAILED, DeliveryStatus.SENT)  # a retry made it
    assert not delivery_advances(DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)
    assert not delivery_advances(DeliveryStatus.FAILED, DeliveryStatus.QUEUED)
    assert not delivery_advances(DeliveryStatus.SENT, DeliveryStatus.SENT)


def test_crm_link_is_mirrored_with_a_system_message_once() -> None:
    dialog = opened()
    link = DialogLinkedToCrm(dialog_id=dialog.id, customer_id=uuid.uuid4(), lead_id=uuid.uuid4())
    events = dialog.link_crm(link, system_message_id=uuid.uuid4(), now=T0)
    assert [type(e) for e in events] == [DialogLinkedToCrm, MessageAppended]
    system = events[1]
    assert isinstance(system, MessageAppended) and system.direction == Direction.SYSTEM
    assert system.text == f"Linked to CRM lead {link.lead_id}"
    record(dialog, events)
    assert dialog.crm.lead_id == link.lead_id
    assert dialog.link_crm(link, system_message_id=uuid.uuid4(), now=T0) == []
    assert dialog.last_message is not None and dialog.last_message.direction == Direction.IN


def test_mark_read_resets_unread_once() -> None:
    dialog = opened()
    events = dialog.mark_read("ann")
    assert len(events) == 1 and isinstance(events[0], DialogRead)
    assert (events[0].operator_id, events[0].up_to_message_id) == ("ann", _last_inbound(dialog))
    record(dialog, events)
    assert dialog.unread_for("ann") == 0
    assert dialog.mark_read("ann") == []


def _last_inbound(dialog: Dialog) -> uuid.UUID:
    return [m.message_id for m in dialog.messages.values() if m.direction == Direction.IN][-1]


def test_replay_rebuilds_the_same_state() -> None:
    dialog = opened()
    history: list[tuple[EventPayload, datetime]] = []
    for decision in (
        lambda d: d.assign_by_routing("ann", line_id="demo"),
        lambda d: reply(d),
        lambda d: d.close("ann", CloseReason.OPERATOR),
        lambda d: d.reopen("ann"),
    ):
        events = decision(dialog)
        record(dialog, events)
        history += [(e, T0) for e in events]
    opening = Dialog(dialog.id)
    start = opening.open_from_inbound(
        received(), message_id=next(iter(dialog.messages)), line_id="demo"
    )
    replayed = Dialog.replay(dialog.id, [(e, T0) for e in start] + history)
    assert replayed == dialog


def test_system_lines_describe_state_changes() -> None:
    d = uuid.uuid4()
    assert describe(dialog_assigned(d, "ann")) == "Assigned to ann by routing"
    assert (
        describe(
            DialogClosed(dialog_id=d, reason=CloseReason.OPERATOR, actor_id="ann", line_id="demo")
        )
        == "Closed by ann"
    )
    assert describe(DialogRead(dialog_id=d, operator_id="ann")) is None


# -- access --------------------------------------------------------------------------------


def test_take_reports_the_race_to_a_line_operator_and_hides_the_dialog_from_others() -> None:
    dialog = assigned_to("ann")
    require_takeable(BOB, dialog)  # the decision then says already_assigned
    require_readable(BOB, dialog)  # a colleague's dialog of his line: read-only
    with pytest.raises(NotAllowed):
        require_actable(BOB, dialog)
    with pytest.raises(DialogNotFound):
        require_takeable(OUTSIDER, dialog)
    record(dialog, dialog.close("ann", CloseReason.OPERATOR))
    with pytest.raises(NotAllowed):
        require_takeable(BOB, dialog)
