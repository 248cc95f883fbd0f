"""Dialogs' side of the suite's one access policy (`openlines.kit.access`, where the rules
and their table live): the checks the API runs on a loaded dialog or a read-model row.

A dialog one may not read is reported as not found, so that its existence does not leak; one
read but not to be written (a colleague's dialog, opened read-only) is 403 `not_allowed`.
"""

from __future__ import annotations

from typing import Any

from openlines.dialogs.domain import Dialog, DialogNotFound, NotAllowed
from openlines.kit.access import DialogFacts, Scope

Viewer = Scope
"""The caller's scope (`Scope.of(principal, lines)`); the name the API has always used."""


def facts(dialog: Dialog) -> DialogFacts:
    return DialogFacts(
        dialog.line_id,
        dialog.status,
        dialog.assignee_id,
        tuple(dialog.participants),
        tuple(dialog.mentioned),
    )


def row_facts(row: Any) -> DialogFacts:
    """The facts of a read-model row of `tables.dialogs`."""
    return DialogFacts(row.line_id, row.status, row.assignee_id, row.participants, row.mentioned)


def require_readable(viewer: Scope, dialog: Dialog) -> None:
    if not (dialog.exists and viewer.can_read(facts(dialog))):
        raise DialogNotFound(f"dialog {dialog.id} not found")


def require_actable(viewer: Scope, dialog: Dialog) -> None:
    """May write (reply, note, close...): 404 if one may not even read it."""
    require_readable(viewer, dialog)
    if not viewer.can_write(facts(dialog)):
        raise NotAllowed("you may read this dialog but not write to it; join it first")


def require_takeable(viewer: Scope, dialog: Dialog) -> None:
    """Like `require_actable`, but an operator of the line may try to take an open dialog
    that someone else got first: two operators racing for one dialog must see the loser's
    409 `already_assigned`, not an answer that depends on timing."""
    if dialog.exists and viewer.can_try_take(facts(dialog)):
        return
    require_actable(viewer, dialog)


def require_transferable(viewer: Scope, dialog: Dialog) -> None:
    require_readable(viewer, dialog)
    if not viewer.can_transfer(facts(dialog)):
        raise NotAllowed("only the responsible operator or a supervisor may transfer it")
