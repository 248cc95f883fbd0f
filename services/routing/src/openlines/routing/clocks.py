"""The timers of a dialog, free of I/O: what they count from, and when each is due.

Routing folds every event of a dialog's stream into a `DialogClock` (`observe`) and derives
from it when each timer should fire (`plan`). The timers are re-armed from the plan after every
event, so a timer always stands for the latest facts routing knows; the close and re-route
commands they send carry the stream version they were decided on, and dialogs ignores them if
the dialog has changed since (routing then sees that change and re-arms them).

- SLA (RetailCRM's markers): from the customer's last unanswered message; reassignment does
  not reset it, an operator's reply clears it. Each marker is emitted once per waiting period.
- Auto-close: an assigned dialog after `inactive_seconds` without a message, an unassigned
  one after `unassigned_seconds`, both counted from the last message (or the opening).
- Re-route: an assignee who has not answered within `reroute_after_seconds` of the customer's
  message, or of getting the dialog if that came later, loses it to the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from openlines.events.catalog import (
    CloseReason,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
)
from openlines.events.lines import Line

# DialogTransferred's reason when a re-route timer took the dialog from its assignee.
NO_ANSWER = "no_answer"


class SlaMarker(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


@dataclass(frozen=True)
class DialogClock:
    dialog_id: UUID
    line_id: str
    channel_id: str | None
    version: int
    open: bool
    last_message_at: datetime
    """The last message in or out (the opening before any): auto-close counts from it."""
    assignee_id: str | None = None
    assigned_at: datetime | None = None
    waiting_since: datetime | None = None
    """The customer's last unanswered message (None: nothing waits for an answer)."""
    sla_reached: SlaMarker | None = None
    """The marker already emitted for `waiting_since`."""


def observe(
    clock: DialogClock | None, event: Any, version: int, at: datetime
) -> DialogClock | None:
    """The clock after the dialog's event number `version` (recorded `at`); None for a dialog
    routing never saw open. Replays and older events (a version already applied) change
    nothing."""
    if isinstance(event, DialogOpened):
        if clock is not None:
            return clock
        return DialogClock(event.dialog_id, event.line_id, event.channel_id, version, True, at)
    if clock is None or version <= clock.version:
        return clock
    clock = replace(clock, version=version)
    match event:
        case MessageAppended(direction=Direction.IN):
            # The count restarts at each customer message until somebody answers.
            return replace(
                clock, last_message_at=event.sent_at, waiting_since=event.sent_at, sla_reached=None
            )
        case MessageAppended(direction=Direction.OUT):
            return replace(
                clock, last_message_at=event.sent_at, waiting_since=None, sla_reached=None
            )
        case DialogAssigned():
            return replace(clock, assignee_id=event.operator_id, assigned_at=at)
        case DialogTransferred():
            return replace(
                clock,
                line_id=event.to_line_id or clock.line_id,
                assignee_id=event.to_operator_id,
                assigned_at=at if event.to_operator_id else None,
            )
        case DialogClosed():
            return replace(clock, open=False, waiting_since=None, sla_reached=None)
        case DialogReopened():
            return replace(
                clock,
                open=True,
                line_id=event.line_id or clock.line_id,
                assignee_id=event.operator_id,
                assigned_at=at,
                last_message_at=at,
            )
    return clock  # notes, reads, receipts...: only the version moved


@dataclass(frozen=True)
class Plan:
    """When each of the dialog's timers is due (None: not armed)."""

    sla_warning: datetime | None = None
    sla_breach: datetime | None = None
    auto_close: datetime | None = None
    close_reason: CloseReason | None = None
    reroute: datetime | None = None


def plan(clock: DialogClock, line: Line) -> Plan:
    if not clock.open:
        return Plan()
    warning = breach = reroute = None
    if clock.waiting_since is not None:
        sla = line.sla_of(clock.channel_id)
        if clock.sla_reached is None:
            warning = clock.waiting_since + line.duration(sla.warning_seconds)
        if clock.sla_reached is not SlaMarker.BREACH:
            breach = clock.waiting_since + line.duration(sla.breach_seconds)
        if clock.assignee_id is not None and line.reroute_after_seconds is not None:
            since = max(clock.waiting_since, clock.assigned_at or clock.waiting_since)
            reroute = since + line.duration(line.reroute_after_seconds)
    if clock.assignee_id is not None:
        idle = line.auto_close.inactive_seconds
        reason = CloseReason.AUTO_INACTIVE
    else:
        idle = line.auto_close.unassigned_seconds
        reason = CloseReason.AUTO_UNASSIGNED
    close = clock.last_message_at + line.duration(idle) if idle is not None else None
    return Plan(warning, breach, close, reason if close else None, reroute)


def sla_due(clock: DialogClock | None, marker: SlaMarker, waiting_since: datetime) -> bool:
    """May the `marker` timer armed for `waiting_since` be emitted now? Not if the customer was
    answered or wrote again since, the dialog closed, or the marker (or a later one) was."""
    if clock is None or not clock.open or clock.waiting_since != waiting_since:
        return False
    if marker is SlaMarker.WARNING:
        return clock.sla_reached is None
    return clock.sla_reached is not SlaMarker.BREACH
