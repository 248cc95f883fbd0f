"""Why a decision refuses: one `DomainError` subclass per reason, each with a machine-readable
`code` and the HTTP `status` the API answers with (409: the dialog's state forbids it now;
422: the request itself cannot be right; 403/404 as usual).

A refusal is declared in one line, `class Name(DomainError, code=..., status=...): ...`; it
is a real exception class for `except` and `pytest.raises`.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A decision refused."""

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 409

    def __init_subclass__(
        cls, *, code: str | None = None, status: int | None = None, **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LoadNeeded(Exception):
    """Not a refusal: the decision would make the caller the assignee under the max_dialogs
    rule, and the caller's load was not counted yet (the API counts it, under a lock, only
    when a decision needs it, then decides again)."""


# -- the dialog and who holds it ------------------------------------------------------------
class DialogNotFound(DomainError, code="not_found", status=404): ...


class AlreadyAssigned(DomainError, code="already_assigned"): ...


class NewerDialogExists(DomainError, code="newer_dialog_exists"): ...


class DialogIsClosed(DomainError, code="dialog_closed"): ...


class DialogNotClosed(DomainError, code="not_closed"): ...


class NotAssignedToYou(DomainError, code="not_assigned"): ...


class AtCapacity(DomainError, code="at_capacity"): ...


class PinnedToOther(DomainError, code="pinned_to_other"): ...


class LastOperator(DomainError, code="last_operator"): ...


class UnknownOperator(DomainError, code="unknown_operator", status=422): ...


class UnknownLine(DomainError, code="unknown_line", status=422): ...


class EmptyTitle(DomainError, code="empty_title", status=422): ...


class DialogNotOpen(DomainError, code="not_assignable"):
    """A routing command that no longer applies (closed, already assigned, other line)."""


class NotAllowed(DomainError, code="not_allowed", status=403):
    """The caller may read the dialog but not do this to it (the access policy's 403)."""


class NotOnLine(DomainError, code="not_on_line", status=422):
    """The operator a dialog would go to does not serve its line."""


class AssigneeChanged(DomainError, code="assignee_changed"):
    """A guarded transfer: the dialog is no longer with the operator the caller saw (another
    transfer or take won the race)."""


class DialogChanged(DomainError, code="dialog_changed"):
    """A timer's command decided on an older version of the dialog: something happened since
    (the sender re-arms its timer from that)."""


# -- messages -------------------------------------------------------------------------------
class EmptyMessage(DomainError, code="empty_message", status=422): ...


class TextTooLong(DomainError, code="text_too_long", status=422): ...


class UnknownMessage(DomainError, code="unknown_message", status=422): ...


class NotAuthor(DomainError, code="not_author", status=403): ...


class WindowExpired(DomainError, code="window_expired"): ...


class ChangeNotSupported(DomainError, code="not_supported"): ...


class MessageIsDeleted(DomainError, code="message_deleted"): ...


class MessageNotFound(DomainError, code="message_not_found", status=404):
    """The message named by the path is not one of this dialog's."""


class NotChangeable(DomainError, code="not_changeable"):
    """Only operator messages to the customer can be edited or deleted."""


# -- quick replies (their templates are `templates`; the replies are not dialog events) -----
class TemplateSyntax(DomainError, code="template_syntax", status=422): ...


class UnknownVariable(DomainError, code="unknown_variable", status=422): ...


class UnknownQuickReply(DomainError, code="unknown_quick_reply", status=422): ...


class QuickReplyNotForLine(DomainError, code="quick_reply_not_for_line", status=422): ...


class TemplateNotAllowed(DomainError, code="template_not_allowed", status=422):
    """A template construct beyond plain text and the known variables (filters, calls,
    loops, item access...): quick replies are text with placeholders, never code."""


# -- provider templates and the customer-service window (WhatsApp) --------------------------
class WindowClosed(DomainError, code="window_closed"):
    """WhatsApp takes free-form messages only within 24 hours of the customer's last message;
    outside it, only an approved template."""


class UnknownProviderTemplate(DomainError, code="unknown_template", status=422):
    """No such template (name and language) among the channel's configured ones."""


class TemplateVariables(DomainError, code="invalid_template_variables", status=422):
    """The variables do not fill the template's placeholders one for one."""


class TemplatesNotSupported(DomainError, code="templates_not_supported", status=422):
    """The dialog's channel has no provider templates (only WhatsApp's have)."""


# -- ratings and classification (`feedback`) ------------------------------------------------
class ScoreOutOfScale(DomainError, code="score_out_of_scale", status=422): ...


class RatingNotRequested(DomainError, code="rating_not_requested"):
    """A customer's rating of a dialog that never asked for one (a forged button press)."""


class NotClassifiable(DomainError, code="classification_not_configured", status=422):
    """The dialog's line has no classification values."""


class UnknownClassType(DomainError, code="unknown_classification_type", status=422): ...


class UnknownClassReason(DomainError, code="unknown_classification_reason", status=422): ...


class UnknownClassStatus(DomainError, code="unknown_classification_status", status=422): ...
