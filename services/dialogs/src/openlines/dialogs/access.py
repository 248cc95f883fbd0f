"""Who may see and act on a dialog (DESIGN §9, Uspacy's permissions). Pure.

An operator sees the unassigned dialogs of their lines and the dialogs they are assigned to or
take part in; supervisors and admins see everything, or, with a token restricted to some lines,
everything on those lines. Anything else is reported as not found, so that a dialog's
existence does not leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openlines.dialogs.domain import Dialog, DialogNotFound, DialogStatus
from openlines.kit.http.auth import Principal
from openlines.kit.lines import LinesConfig


@dataclass(frozen=True)
class Viewer:
    operator_id: str
    is_supervisor: bool
    lines: frozenset[str]
    """The lines whose unassigned dialogs this operator sees."""
    supervised_lines: frozenset[str] | None = None
    """A supervisor's reach: None is every line; a token's `lines` claim narrows it."""

    @classmethod
    def of(cls, principal: Principal, config: LinesConfig) -> Viewer:
        lines = frozenset(line.id for line in config.lines_of(principal.operator_id))
        if principal.lines is not None:  # the token may narrow them, never widen
            lines &= principal.lines
        supervised = principal.lines if principal.is_supervisor else None
        return cls(principal.operator_id, principal.is_supervisor, lines, supervised)


def can_see(
    viewer: Viewer,
    *,
    status: str,
    line_id: str,
    assignee_id: str | None,
    participants: Sequence[str],
) -> bool:
    if viewer.operator_id == assignee_id or viewer.operator_id in participants:
        return True
    if viewer.is_supervisor:
        return viewer.supervised_lines is None or line_id in viewer.supervised_lines
    return status == DialogStatus.UNASSIGNED and line_id in viewer.lines


def require_visible(viewer: Viewer, dialog: Dialog) -> None:
    visible = dialog.exists and can_see(
        viewer,
        status=dialog.status,
        line_id=dialog.line_id,
        assignee_id=dialog.assignee_id,
        participants=dialog.participants,
    )
    if not visible:
        raise DialogNotFound(f"dialog {dialog.id} not found")


def require_takeable(viewer: Viewer, dialog: Dialog) -> None:
    """Like `require_visible`, but an operator of the line may try to take an open dialog
    that someone else got first: two operators racing for one dialog must see the loser's
    409 `already_assigned`, not a 404 that depends on timing."""
    if dialog.exists and dialog.is_open and dialog.line_id in viewer.lines:
        return
    require_visible(viewer, dialog)
