"""Dialogs' side of the suite's one access policy (`openlines.kit.access`, where the rules
and their table live): the checks the API runs on a loaded dialog.

A dialog one may not see is reported as not found, so that its existence does not leak; one
seen but not to be acted on is 403 `forbidden`.
"""

from __future__ import annotations

from collections.abc import Sequence

from openlines.dialogs.domain import Dialog, DialogNotFound
from openlines.kit.access import DialogFacts, Scope
from openlines.kit.http.errors import ApiError

Viewer = Scope
"""The caller's scope (`Scope.of(principal, lines)`); the name the API has always used."""


def facts(dialog: Dialog) -> DialogFacts:
    return DialogFacts(dialog.line_id, dialog.status, dialog.assignee_id, dialog.participants)


def can_see(
    viewer: Scope,
    *,
    status: str,
    line_id: str,
    assignee_id: str | None,
    participants: Sequence[str],
) -> bool:
    return viewer.can_see(DialogFacts(line_id, status, assignee_id, participants))


def require_visible(viewer: Scope, dialog: Dialog) -> None:
    if not (dialog.exists and viewer.can_see(facts(dialog))):
        raise DialogNotFound(f"dialog {dialog.id} not found")


def require_actable(viewer: Scope, dialog: Dialog) -> None:
    require_visible(viewer, dialog)
    if not viewer.can_act(facts(dialog)):
        raise ApiError(403, "forbidden", "you may see this dialog but not act on it")


def require_takeable(viewer: Scope, dialog: Dialog) -> None:
    """Like `require_actable`, but an operator of the line may try to take an open dialog
    that someone else got first: two operators racing for one dialog must see the loser's
    409 `already_assigned`, not a 404 that depends on timing."""
    if dialog.exists and viewer.can_try_take(facts(dialog)):
        return
    require_actable(viewer, dialog)
