"""``openlines.dialogs.commands.v1``: requests to the dialogs service, keyed by dialog id.

Routing sends these instead of writing dialog streams (one writer per stream); dialogs checks
each one and records the resulting event, or ignores it when stale. ``stream_version`` is 0.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from openlines.events.catalog.common import CloseReason
from openlines.events.envelope import EventPayload
from openlines.events.limits import Id, Reason

__all__ = ["AssignDialog", "CloseDialog", "ReturnToQueue"]


class AssignDialog(EventPayload):
    """Routing chose an operator; dialogs records ``DialogAssigned`` if still valid."""

    TYPE: ClassVar[str] = "AssignDialog"

    dialog_id: UUID
    operator_id: Id
    line_id: Id
    strategy: Id | None = None
    """The line's routing strategy (``round_robin``, ``least_loaded``...)."""
    reason: Reason | None = None
    """Why now, e.g. ``new``, ``capacity_freed``, ``operator_online``, ``no_answer``."""
    expected_operator_id: Id | None = None
    """The assignee routing believed current (re-route); dialogs may skip if it changed."""


class CloseDialog(EventPayload):
    """Close a dialog (auto-close timers)."""

    TYPE: ClassVar[str] = "CloseDialog"

    dialog_id: UUID
    reason: CloseReason
    actor_id: Id | None = None
    expected_version: int | None = Field(default=None, ge=1)
    """The dialog's stream version the sender decided on (timers): dialogs ignores the
    command if the dialog has changed since."""


class ReturnToQueue(EventPayload):
    """Unassign a dialog so routing queues it again (e.g. no answer within N)."""

    TYPE: ClassVar[str] = "ReturnToQueue"

    dialog_id: UUID
    reason: Reason
    operator_id: Id | None = None
    """The assignee being removed."""
    expected_version: int | None = Field(default=None, ge=1)
    """As ``CloseDialog.expected_version``."""
