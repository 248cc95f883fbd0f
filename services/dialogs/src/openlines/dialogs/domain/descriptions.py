"""Staff-facing descriptions: the system lines that state changes show in the timeline."""

from __future__ import annotations

from openlines.events.catalog import (
    AssignedBy,
    CloseReason,
    DialogAssigned,
    DialogClassified,
    DialogClosed,
    DialogLinkedToCrm,
    DialogPinned,
    DialogRated,
    DialogRenamed,
    DialogReopened,
    DialogTransferred,
    MessageDeleted,
    ParticipantJoined,
    ParticipantLeft,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import EventPayload


def describe_crm_link(e: DialogLinkedToCrm) -> str:
    for label, value in (
        ("deal", e.deal_id),
        ("lead", e.lead_id),
        ("contact", e.contact_id),
        ("company", e.company_id),
    ):
        if value is not None:
            return f"Linked to CRM {label} {value}"
    return f"Linked to CRM customer {e.customer_id}"


# Why a dialog was closed by a timer (auto-close), in the timeline's words.
_AUTO_CLOSED = {
    CloseReason.AUTO_INACTIVE: "Closed automatically: no message for the line's inactivity time",
    CloseReason.AUTO_UNASSIGNED: "Closed automatically: unassigned for the line's time limit",
}


def describe_sla(reached: SlaWarningReached | SlaBreached) -> str:
    what = "SLA warning" if isinstance(reached, SlaWarningReached) else "SLA breached"
    who = f" ({reached.operator_id})" if reached.operator_id else ""
    return (
        f"{what}: the customer's message has waited {reached.threshold_seconds} s"
        f" without an answer{who}"
    )


def describe(event: EventPayload) -> str | None:
    """The system line a state change shows in the timeline (None: it shows none)."""
    match event:
        case DialogAssigned(assigned_by=AssignedBy.ROUTING):
            how = f" ({event.strategy})" if event.strategy else ""
            return f"Assigned to {event.operator_id} by routing{how}"
        case DialogAssigned(actor_id=str() as actor) if actor != event.operator_id:
            return None  # the other half of a transfer, whose own line says it all
        case DialogAssigned(previous_operator_id=str() as previous):
            return f"{event.operator_id} took the dialog over from {previous}"
        case DialogAssigned():
            return f"{event.operator_id} took the dialog"
        case DialogTransferred(to_operator_id=None, to_line_id=line, from_line_id=source) if (
            line != source and line is not None and source is not None
        ):
            return f"{event.actor_id} moved the dialog to line {line}{_why(event.reason)}"
        case DialogTransferred(to_operator_id=None, reason="no_answer"):
            return f"Returned to the queue: {event.from_operator_id} did not answer in time"
        case DialogTransferred(to_operator_id=None):
            return f"Returned to the queue ({event.reason or 'no reason'})"
        case DialogTransferred(from_operator_id=str() as previous):
            return (
                f"{event.actor_id} transferred the dialog from {previous}"
                f" to {event.to_operator_id}{_why(event.reason)}"
            )
        case DialogTransferred():
            return f"{event.actor_id} transferred the dialog to {event.to_operator_id}" + _why(
                event.reason
            )
        case ParticipantJoined(actor_id=actor, operator_id=joined) if actor != joined:
            return f"{actor} invited {joined}"
        case ParticipantJoined():
            return f"{event.operator_id} joined the dialog"
        case ParticipantLeft():
            return f"{event.operator_id} left the dialog"
        case DialogClosed(reason=CloseReason.SPAM):
            return f"Marked as spam by {event.actor_id}"
        case DialogClosed(actor_id=str() as actor):
            return f"Closed by {actor}"
        case DialogClosed(reason=CloseReason.AUTO_INACTIVE | CloseReason.AUTO_UNASSIGNED):
            return f"{_AUTO_CLOSED[event.reason]} ({event.reason})"
        case DialogClosed():
            return f"Closed automatically ({event.reason})"
        case DialogReopened():
            return f"Reopened by {event.actor_id}"
        case DialogRenamed():
            return f"{event.actor_id} renamed the dialog to {event.title!r}"
        case DialogPinned(pinned=True):
            return f"Pinned to {event.operator_id}: the customer's next dialogs go to them first"
        case DialogPinned():
            return f"Unpinned from {event.operator_id}"
        case MessageDeleted(actor_id=str() as actor):
            return f"{actor} deleted a message"
        case MessageDeleted():
            return "The customer deleted a message"
        case DialogRated(by="customer"):
            return f"The customer rated the dialog {event.score}/{event.scale}"
        case DialogRated():
            comment = f": {event.comment}" if event.comment else ""
            return f"{event.actor_id} rated the customer {event.score}/{event.scale}{comment}"
        case DialogClassified():
            return f"{event.actor_id} classified the dialog: {_classification(event)}"
    return None


def _classification(e: DialogClassified) -> str:
    parts = [
        f"type {e.type}" if e.type else None,
        f"reasons {', '.join(e.reasons)}" if e.reasons else None,
        f"status {e.status}" if e.status else None,
    ]
    return "; ".join(p for p in parts if p) or "cleared"


def _why(reason: str | None) -> str:
    return f" ({reason})" if reason else ""
