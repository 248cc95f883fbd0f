"""``openlines.routing.v1``: presence, queue and SLA facts, keyed by operator id
(``OperatorPresenceChanged``) or dialog id (the others)."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from openlines.events.catalog.common import PresenceStatus, SlaMetric
from openlines.events.envelope import EventPayload, UtcDatetime
from openlines.events.limits import ID_MAX, Id, Reason

__all__ = ["DialogQueued", "OperatorPresenceChanged", "SlaBreached", "SlaWarningReached"]


class OperatorPresenceChanged(EventPayload):
    TYPE: ClassVar[str] = "OperatorPresenceChanged"

    operator_id: Id
    status: PresenceStatus
    previous_status: PresenceStatus | None = None
    """None the first time the operator is seen."""
    line_ids: tuple[Id, ...] = Field(default=(), max_length=ID_MAX)
    """Lines the operator serves."""


class DialogQueued(EventPayload):
    """The dialog waits for an operator (FIFO within priority)."""

    TYPE: ClassVar[str] = "DialogQueued"

    dialog_id: UUID
    line_id: Id
    priority: int = 0
    """Higher is served first."""
    queued_at: UtcDatetime
    position: int | None = Field(default=None, ge=1)
    """1-based position in the line's queue when queued."""
    reason: Reason | None = None
    """Why it is queued, e.g. ``new``, ``returned``, ``transferred``."""


class _SlaEvent(EventPayload):
    dialog_id: UUID
    line_id: Id
    operator_id: Id | None = None
    """The assignee, if any; reassignment does not reset the clock."""
    waiting_since: UtcDatetime
    """The customer's last unanswered message."""
    threshold_seconds: int = Field(ge=0)
    """The configured threshold (a multiple of 30 s)."""
    metric: SlaMetric = SlaMetric.RESPONSE


class SlaWarningReached(_SlaEvent):
    """The yellow threshold passed."""

    TYPE: ClassVar[str] = "SlaWarningReached"


class SlaBreached(_SlaEvent):
    """The red threshold passed."""

    TYPE: ClassVar[str] = "SlaBreached"
