"""Who is told about what, free of I/O.

A small view of each dialog (line, assignee, participants, status) is enough to decide who an
event concerns. `apply` moves the view; `audience_for` names the operators concerned, by
operator (with the reason) or by line (unassigned dialogs); `reason_for` checks one session's
`Scope` (the suite's access policy, `openlines.kit.access`): a supervisor hears of the dialogs
of the lines they supervise, which a token's `lines` claim narrows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from openlines.events.catalog import (
    DialogAssigned,
    DialogOpened,
    DialogPinned,
    DialogQueued,
    DialogRead,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    OperatorPresenceChanged,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.catalog.common import DialogStatus
from openlines.events.envelope import EventPayload
from openlines.events.topics import DIALOGS, TOPICS
from openlines.kit.access import DialogFacts, Scope
from openlines.kit.counters import WorkFacts


class Reason(StrEnum):
    """Why a session gets a push (the `reason` field of the message)."""

    ASSIGNED_TO_YOU = "assigned_to_you"
    TAKEN_FROM_YOU = "taken_from_you"
    YOUR_DIALOG = "your_dialog"
    MENTIONED = "mentioned"
    YOURS = "yours"
    """Personal state: your presence, your pins, your read marks."""
    YOUR_LINE = "your_line"
    """An unassigned dialog of one of your lines."""
    ALL_LINES = "all_lines"
    """Supervisors and admins: a dialog of a line they supervise (every line, unless their
    token's `lines` claim narrows them), and with every line, everything."""


DIALOG_EVENT_TYPES: frozenset[type[EventPayload]] = frozenset(TOPICS[DIALOGS].event_types)


@dataclass(frozen=True)
class DialogView:
    line_id: str | None
    status: DialogStatus
    assignee: str | None = None
    participants: frozenset[str] = frozenset()
    version: int = 0
    """Last applied stream version of the dialog (DIALOGS events only)."""
    # What the counters need besides the access facts (`openlines.kit.counters`).
    last_direction: str | None = None
    inbound_count: int = 0
    read_marks: Mapping[str, int] = field(default_factory=dict)

    def work_facts(self) -> WorkFacts:
        return WorkFacts(self.facts, self.last_direction, self.inbound_count, self.read_marks)

    @property
    def members(self) -> frozenset[str]:
        if self.assignee is None:
            return self.participants
        return self.participants | {self.assignee}

    @property
    def facts(self) -> DialogFacts:
        """The view as the access policy sees a dialog."""
        return DialogFacts(
            self.line_id or "", self.status.value, self.assignee, tuple(sorted(self.participants))
        )


def is_dialog_event(payload: EventPayload) -> bool:
    return type(payload) in DIALOG_EVENT_TYPES


def is_stale(view: DialogView | None, payload: EventPayload, stream_version: int) -> bool:
    """A dialog event at or below the applied version was seen already (a replay)."""
    return (
        view is not None
        and is_dialog_event(payload)
        and stream_version > 0
        and stream_version <= view.version
    )


def apply(view: DialogView | None, payload: EventPayload, stream_version: int) -> DialogView | None:
    """The view after `payload` (None: the event says nothing about a known dialog yet)."""
    new = _transition(view, payload)
    if new is not None and is_dialog_event(payload) and stream_version > new.version:
        new = replace(new, version=stream_version)
    return new


def _transition(view: DialogView | None, p: EventPayload) -> DialogView | None:
    if isinstance(p, DialogOpened):
        version = view.version if view else 0
        return DialogView(line_id=p.line_id, status=DialogStatus.UNASSIGNED, version=version)
    if isinstance(p, DialogQueued):
        # Routing's topic is not ordered with the dialog's: never let it undo an assignment.
        return view if view is not None else DialogView(p.line_id, DialogStatus.UNASSIGNED)
    if view is None:
        if not is_dialog_event(p):
            return None  # e.g. an SLA event of a dialog not seen yet: nothing to record
        view = DialogView(line_id=getattr(p, "line_id", None), status=DialogStatus.UNASSIGNED)
    # Line, status, assignee and participants move as the access policy's facts do (kit).
    facts = view.facts.after(p)
    view = replace(
        view,
        line_id=facts.line_id or None,
        status=DialogStatus(facts.status),
        assignee=facts.assignee_id,
        participants=frozenset(facts.participants),
    )
    return _counted(view, p)


def _counted(view: DialogView, p: EventPayload) -> DialogView:
    """The counters' facts after `p`, as dialogs' state keeps them (a reply reads for its
    author; a DialogRead reads every customer message before it in the stream)."""
    if isinstance(p, MessageAppended) and p.direction is Direction.IN:
        return replace(view, last_direction=p.direction.value, inbound_count=view.inbound_count + 1)
    if isinstance(p, MessageAppended) and p.direction is Direction.OUT:
        marks = dict(view.read_marks)
        if p.author_id is not None:
            marks[p.author_id] = view.inbound_count
        return replace(view, last_direction=p.direction.value, read_marks=marks)
    if isinstance(p, DialogRead):
        return replace(view, read_marks={**view.read_marks, p.operator_id: view.inbound_count})
    return view


@dataclass(frozen=True)
class Audience:
    personal: Mapping[str, Reason] = field(default_factory=dict)
    lines: frozenset[str] = frozenset()
    """Every operator of these lines (the event is about an unassigned dialog)."""
    dialog_lines: frozenset[str] = frozenset()
    """The dialog's line before and after the event: its supervisors hear of it. Empty for
    an event of no dialog (presence), which only supervisors of every line hear of."""


def reason_for(scope: Scope, audience: Audience) -> Reason | None:
    personal = audience.personal.get(scope.operator_id)
    if personal is not None:
        return personal
    if audience.lines & scope.member_lines:
        return Reason.YOUR_LINE
    if scope.sees_all_lines or any(scope.supervises(line) for line in audience.dialog_lines):
        return Reason.ALL_LINES
    return None


def audience_for(
    payload: EventPayload, before: DialogView | None, after: DialogView | None
) -> Audience:
    if isinstance(payload, DialogPinned | DialogRead):
        return Audience({payload.operator_id: Reason.YOURS})
    if isinstance(payload, OperatorPresenceChanged):
        return Audience({payload.operator_id: Reason.YOURS})
    views = [v for v in (before, after) if v is not None]
    # Members before and after: whoever loses or gains access by this event hears of it.
    personal: dict[str, Reason] = {m: Reason.YOUR_DIALOG for v in views for m in v.members}
    lines = frozenset(v.line_id for v in views if v.status is DialogStatus.UNASSIGNED and v.line_id)
    dialog_lines = frozenset(v.line_id for v in views if v.line_id)
    if isinstance(payload, DialogAssigned):
        # Who held it just before this event: after a transfer's DialogTransferred (which told
        # both operators already) the assignment that follows it changes hands no more.
        held_by = before.assignee if before is not None else payload.previous_operator_id
        if held_by and held_by != payload.operator_id:
            personal[held_by] = Reason.TAKEN_FROM_YOU
        if held_by != payload.operator_id:
            personal[payload.operator_id] = Reason.ASSIGNED_TO_YOU
    elif isinstance(payload, DialogTransferred):
        if payload.from_operator_id and payload.from_operator_id != payload.to_operator_id:
            personal[payload.from_operator_id] = Reason.TAKEN_FROM_YOU
        if payload.to_operator_id:
            personal[payload.to_operator_id] = Reason.ASSIGNED_TO_YOU
    elif isinstance(payload, DialogReopened):
        personal[payload.operator_id] = Reason.ASSIGNED_TO_YOU
    elif isinstance(payload, MessageAppended) and payload.direction is Direction.NOTE:
        for operator_id in payload.mentions:
            personal.setdefault(operator_id, Reason.MENTIONED)
    elif isinstance(payload, SlaWarningReached | SlaBreached) and payload.operator_id:
        personal.setdefault(payload.operator_id, Reason.YOUR_DIALOG)
    return Audience(personal, lines, dialog_lines)


def watchers(view: DialogView) -> Audience:
    """Everyone a push about this dialog, as it now is, would reach (what a colleague's
    typing goes to)."""
    lines = frozenset({view.line_id}) if view.line_id else frozenset()
    unassigned = lines if view.status is DialogStatus.UNASSIGNED else frozenset()
    return Audience({m: Reason.YOUR_DIALOG for m in view.members}, unassigned, lines)
