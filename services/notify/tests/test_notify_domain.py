"""The pure rules: how dialog views move and whom an event concerns."""

from __future__ import annotations

import uuid

from openlines.events.catalog import (
    CloseReason,
    DialogClosed,
    DialogPinned,
    DialogQueued,
    DialogTransferred,
    Direction,
    MessageAppended,
    SlaBreached,
)
from openlines.events.catalog.common import DialogStatus
from openlines.events.envelope import EventPayload, utc_now
from openlines.kit.access import Role, Scope
from openlines.notify.domain import (
    Audience,
    DialogView,
    Reason,
    apply,
    audience_for,
    is_stale,
    reason_for,
)
from openlines.notify.settings import NotifySettings

from .notify_support import Dialog

ANN = Scope("ann", member_lines=frozenset({"demo"}))
BOB = Scope("bob", member_lines=frozenset({"demo"}))
ZED = Scope("zed", member_lines=frozenset({"other"}))
SUE = Scope("sue", Role.SUPERVISOR, supervised_lines=None)
SUE_DEMO = Scope("sue", Role.SUPERVISOR, supervised_lines=frozenset({"demo"}))
SUE_OTHER = Scope("sue", Role.SUPERVISOR, supervised_lines=frozenset({"other"}))


def _run(*payloads: EventPayload) -> DialogView | None:
    view = None
    for version, payload in enumerate(payloads, start=1):
        view = apply(view, payload, version)
    return view


def test_views_follow_the_dialog() -> None:
    d = Dialog()
    opened, assigned = d.opened().payload, d.assigned("ann").payload
    assert _run(opened) == DialogView("demo", DialogStatus.UNASSIGNED, version=1)
    view = _run(opened, assigned, d.joined("bob", "ann").payload)
    assert view == DialogView("demo", DialogStatus.ACTIVE, "ann", frozenset({"bob"}), version=3)
    closed = DialogClosed(dialog_id=d.id, reason=CloseReason.SPAM, line_id="demo")
    view = _run(opened, assigned, closed, d.assigned("bob", previous="ann").payload)
    # Reassigning a closed dialog does not reopen it.
    assert view is not None and view.status is DialogStatus.SPAM and view.assignee == "bob"


def test_a_late_queued_event_never_undoes_an_assignment() -> None:
    d = Dialog()
    view = _run(d.opened().payload, d.assigned("ann").payload)
    queued = DialogQueued(dialog_id=d.id, line_id="demo", queued_at=utc_now())
    assert apply(view, queued, 0) == view
    assert apply(None, queued, 0) == DialogView("demo", DialogStatus.UNASSIGNED)


def test_replayed_dialog_events_are_stale() -> None:
    d = Dialog()
    view = _run(d.opened().payload, d.assigned("ann").payload)
    assert is_stale(view, d.opened().payload, 2)
    assert not is_stale(view, d.message("hi").payload, 3)
    queued = DialogQueued(dialog_id=d.id, line_id="demo", queued_at=utc_now())
    assert not is_stale(view, queued, 0)


def test_transfer_to_another_line_reaches_that_line_and_tells_the_previous_assignee() -> None:
    d = Dialog()
    before = _run(d.opened().payload, d.assigned("ann").payload)
    transfer = DialogTransferred(
        dialog_id=d.id, from_operator_id="ann", to_line_id="other", actor_id="sue"
    )
    after = apply(before, transfer, 3)
    assert after == DialogView("other", DialogStatus.UNASSIGNED, None, version=3)
    audience = audience_for(transfer, before, after)
    assert reason_for(ANN, audience) is Reason.TAKEN_FROM_YOU
    assert reason_for(ZED, audience) is Reason.YOUR_LINE
    assert reason_for(BOB, audience) is None
    assert reason_for(SUE, audience) is Reason.ALL_LINES
    # A supervisor of either line hears of it: demo's loses it, other's gains it.
    assert reason_for(SUE_DEMO, audience) is Reason.ALL_LINES
    assert reason_for(SUE_OTHER, audience) is Reason.ALL_LINES
    message = d.message("hi").payload
    assert reason_for(SUE_DEMO, audience_for(message, after, after)) is None
    assert reason_for(SUE_OTHER, audience_for(message, after, after)) is Reason.ALL_LINES


def test_a_transfer_to_an_operator_tells_each_operator_once() -> None:
    # dialogs records DialogTransferred, then DialogAssigned naming the previous assignee.
    d = Dialog()
    held = _run(d.opened().payload, d.assigned("ann").payload)
    transfer = DialogTransferred(
        dialog_id=d.id, from_operator_id="ann", to_operator_id="bob", actor_id="sue"
    )
    moved = apply(held, transfer, 3)
    first = audience_for(transfer, held, moved)
    assert (reason_for(ANN, first), reason_for(BOB, first)) == (
        Reason.TAKEN_FROM_YOU,
        Reason.ASSIGNED_TO_YOU,
    )
    assigned = d.assigned("bob", previous="ann").payload
    second = audience_for(assigned, moved, apply(moved, assigned, 4))
    # ann is told nothing more (the dialog is no longer hers); bob hears of it as his dialog.
    assert (reason_for(ANN, second), reason_for(BOB, second)) == (None, Reason.YOUR_DIALOG)
    # A take-over on its own still tells both.
    taken = audience_for(assigned, held, apply(held, assigned, 3))
    assert (reason_for(ANN, taken), reason_for(BOB, taken)) == (
        Reason.TAKEN_FROM_YOU,
        Reason.ASSIGNED_TO_YOU,
    )


def test_messages_reach_members_mentions_and_unassigned_lines() -> None:
    d = Dialog()
    unassigned = _run(d.opened().payload)
    message = d.message("hi").payload
    assert reason_for(BOB, audience_for(message, unassigned, unassigned)) is Reason.YOUR_LINE
    active = _run(d.opened().payload, d.assigned("ann").payload)
    note = MessageAppended(
        dialog_id=d.id,
        message_id=uuid.uuid4(),
        direction=Direction.NOTE,
        author_id="ann",
        text="@bob look",
        mentions=("bob",),
        channel_id="tg-demo",
        conversation_key="tg-demo:42",
        sent_at=utc_now(),
    )
    audience = audience_for(note, active, active)
    assert reason_for(ANN, audience) is Reason.YOUR_DIALOG
    assert reason_for(BOB, audience) is Reason.MENTIONED
    assert reason_for(ZED, audience) is None


def test_personal_events_stay_personal() -> None:
    d = Dialog()
    view = _run(d.opened().payload)
    pinned = DialogPinned(dialog_id=d.id, operator_id="bob", pinned=True)
    audience = audience_for(pinned, view, view)
    assert audience == Audience({"bob": Reason.YOURS})
    assert reason_for(ANN, audience) is None


def test_sla_events_reach_the_assignee() -> None:
    d = Dialog()
    view = _run(d.opened().payload, d.assigned("ann").payload)
    breach = SlaBreached(
        dialog_id=d.id,
        line_id="demo",
        operator_id="ann",
        waiting_since=utc_now(),
        threshold_seconds=300,
    )
    assert apply(view, breach, 0) == view
    assert apply(None, breach, 0) is None  # an unknown dialog is not invented
    audience = audience_for(breach, view, view)
    assert reason_for(ANN, audience) is Reason.YOUR_DIALOG
    assert reason_for(BOB, audience) is None


def test_replicas_each_read_every_partition_into_their_own_projection() -> None:
    single = NotifySettings(topic_namespace="", db_schema=None)
    assert (single.consumer_group, single.schema_name) == ("notify.stream", "notify")
    replica = NotifySettings(topic_namespace="", db_schema=None, replica_id="notify-1")
    assert (replica.consumer_group, replica.schema_name) == (
        "notify.stream.notify-1",
        "notify_notify_1",
    )


def test_views_keep_what_the_counters_need_per_operator() -> None:
    d = Dialog()
    view = _run(
        d.opened().payload,
        d.message("one").payload,
        d.message("two").payload,
        d.assigned("ann").payload,
        d.read("bob").payload,
        d.message("three").payload,
    )
    assert view is not None
    work = view.work_facts()
    assert (work.last_direction, work.inbound_count) == ("in", 3)
    assert (work.unread_for("ann"), work.unread_for("bob")) == (3, 1)  # bob's read is his
    replied = apply(view, d.reply("ok", author_id="ann").payload, 7)
    assert replied is not None
    assert replied.work_facts().unread_for("ann") == 0  # a reply reads for its author
    assert replied.work_facts().unread_for("bob") == 1
    assert replied.last_direction == "out"
