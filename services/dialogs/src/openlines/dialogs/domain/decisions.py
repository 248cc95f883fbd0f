"""The Dialog aggregate's decisions: each looks at the state and returns the events to record.

A decision returns the events (possibly none: the request is already satisfied) or raises a
`DomainError`; it never changes the state itself (`apply`, in `state`, does). No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from openlines.dialogs.domain.descriptions import describe_crm_link, describe_sla
from openlines.dialogs.domain.state import (
    CrmLink,
    DialogState,
    DialogStatus,
    MessageState,
    crm_fields,
)
from openlines.events.catalog import (
    AssignedBy,
    Attachment,
    ChannelType,
    CloseReason,
    DeliveryStatus,
    DialogAssigned,
    DialogClosed,
    DialogLinkedToCrm,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    DialogRead,
    DialogRenamed,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    MessageChange,
    MessageDeleted,
    MessageDeliveryUpdated,
    MessageReceived,
    ParticipantJoined,
    ParticipantLeft,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import EventPayload

# -- refusals -----------------------------------------------------------------------------


class DomainError(Exception):
    """A decision refused; `code` is machine-readable, `status` the HTTP answer the API gives
    (409: the dialog's state forbids it now; 422: the request itself cannot be right)."""

    code = "domain_error"
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DialogNotFound(DomainError):
    code = "not_found"
    status = 404


class AlreadyAssigned(DomainError):
    code = "already_assigned"


class NewerDialogExists(DomainError):
    code = "newer_dialog_exists"


class DialogIsClosed(DomainError):
    code = "dialog_closed"


class DialogNotClosed(DomainError):
    code = "not_closed"


class DialogNotOpen(DomainError):
    """A routing command that no longer applies (closed, already assigned, other line)."""

    code = "not_assignable"


class NotAssignedToYou(DomainError):
    code = "not_assigned"


class EmptyMessage(DomainError):
    code = "empty_message"
    status = 422


class TextTooLong(DomainError):
    code = "text_too_long"
    status = 422


class UnknownMessage(DomainError):
    code = "unknown_message"
    status = 422


class AtCapacity(DomainError):
    code = "at_capacity"


# Quick replies (their templates are `templates`; the replies themselves are not dialog events).


class TemplateSyntax(DomainError):
    code = "template_syntax"
    status = 422


class UnknownVariable(DomainError):
    code = "unknown_variable"
    status = 422


class TemplateNotAllowed(DomainError):
    """A template construct beyond plain text and the known variables (filters, calls,
    loops, item access...): quick replies are text with placeholders, never code."""

    code = "template_not_allowed"
    status = 422


class UnknownQuickReply(DomainError):
    code = "unknown_quick_reply"
    status = 422


class QuickReplyNotForLine(DomainError):
    code = "quick_reply_not_for_line"
    status = 422


class MessageNotFound(DomainError):
    """The message named by the path is not one of this dialog's."""

    code = "message_not_found"
    status = 404


class NotChangeable(DomainError):
    """Only operator messages to the customer can be edited or deleted."""

    code = "not_changeable"


class NotAuthor(DomainError):
    code = "not_author"
    status = 403


class WindowExpired(DomainError):
    code = "window_expired"


class ChangeNotSupported(DomainError):
    code = "not_supported"


class MessageIsDeleted(DomainError):
    code = "message_deleted"


class PinnedToOther(DomainError):
    code = "pinned_to_other"


class EmptyTitle(DomainError):
    code = "empty_title"
    status = 422


class NotAllowed(DomainError):
    """The caller may read the dialog but not do this to it (the access policy's 403)."""

    code = "not_allowed"
    status = 403


class NotOnLine(DomainError):
    """The operator a dialog would go to does not serve its line."""

    code = "not_on_line"
    status = 422


class UnknownOperator(DomainError):
    code = "unknown_operator"
    status = 422


class UnknownLine(DomainError):
    code = "unknown_line"
    status = 422


class AssigneeChanged(DomainError):
    """A guarded transfer: the dialog is no longer with the operator the caller saw (another
    transfer or take won the race)."""

    code = "assignee_changed"


class LastOperator(DomainError):
    code = "last_operator"


class DialogChanged(DomainError):
    """A timer's command decided on an older version of the dialog: something happened since
    (the sender re-arms its timer from that)."""

    code = "dialog_changed"


class LoadNeeded(Exception):
    """Not a refusal: the decision would make the caller the assignee under the max_dialogs
    rule, and the caller's load was not counted yet (the API counts it, under a lock, only
    when a decision needs it, then decides again)."""


# -- rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """An operator's open dialogs against their max_dialogs (`limit` None: no limit applies,
    as for supervisors or on a line whose operators may take beyond it)."""

    active: int
    limit: int | None

    @property
    def full(self) -> bool:
        return self.limit is not None and self.active >= self.limit


NO_LIMIT = Load(active=0, limit=None)


@dataclass(frozen=True)
class ChangeWindows:
    """How long after sending a channel lets us change a message at the provider (None:
    no limit)."""

    edit: timedelta | None
    delete: timedelta | None

    def of(self, change: MessageChange) -> timedelta | None:
        return self.edit if change is MessageChange.EDIT else self.delete


# Telegram's Bot API: deleteMessage works on a bot's own messages "sent less than 48 hours
# ago". editMessageText has no time limit for a bot's own messages (its 48 h rule is for
# business messages the bot did not send), so edits are not limited here; should Telegram
# refuse one anyway, outbound reports it and the timeline shows it. The windows count from
# when the message was recorded, which is before the provider got it: never too late.
# Channels absent here cannot change what they sent (no provider does it yet).
CHANGE_WINDOWS: dict[ChannelType, ChangeWindows] = {
    ChannelType.TELEGRAM: ChangeWindows(edit=None, delete=timedelta(hours=48)),
}


_DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}


def delivery_advances(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """Statuses only move forward; receipts and retries may arrive out of order."""
    if current is None:
        return True
    if new == current:
        return False
    if new == DeliveryStatus.FAILED:
        return current in (DeliveryStatus.QUEUED, DeliveryStatus.SENT)
    if current == DeliveryStatus.FAILED:
        return new != DeliveryStatus.QUEUED  # a retry or a late receipt proves it went out
    return _DELIVERY_RANK[new] > _DELIVERY_RANK[current]


def validate_text(text: str, max_length: int) -> None:
    if not text.strip():
        raise EmptyMessage("message text is empty")
    if len(text) > max_length:
        raise TextTooLong(f"message text exceeds the channel's {max_length} characters")


def _require_room(load: Load | None) -> None:
    """The max_dialogs rule, for a decision that makes the caller the assignee."""
    if load is None:
        raise LoadNeeded
    if load.full:
        raise AtCapacity(
            f"you already hold {load.active} open dialogs, your maximum is {load.limit}"
        )


# -- the aggregate ------------------------------------------------------------------------


class Dialog(DialogState):
    """The dialog with its decisions (its state and `apply` are `DialogState`'s)."""

    def open_from_inbound(
        self,
        message: MessageReceived,
        *,
        message_id: UUID,
        line_id: str,
        previous_dialog_id: UUID | None = None,
        customer_id: UUID | None = None,
        pinned_to: str | None = None,
    ) -> list[EventPayload]:
        """`pinned_to`: the conversation's pin (from its previous dialog), which the new
        dialog keeps: its operator can still see and lift it there."""
        if self.exists:
            return []  # the same inbound event was processed before: nothing new
        customer = message.customer
        events: list[EventPayload] = [
            DialogOpened(
                dialog_id=self.id,
                line_id=line_id,
                channel_id=message.channel_id,
                channel_type=message.channel_type,
                conversation_key=message.conversation_key,
                customer=customer,
                external_user_id=message.external_user_id,
                external_chat_id=message.external_chat_id,
                title=customer.name or customer.username or customer.external_id,
                previous_dialog_id=previous_dialog_id,
                customer_id=customer_id,
            )
        ]
        if pinned_to is not None:
            events.append(
                DialogPinned(
                    dialog_id=self.id,
                    operator_id=pinned_to,
                    pinned=True,
                    line_id=line_id,
                    conversation_key=message.conversation_key,
                )
            )
        events.append(self._inbound_appended(message, message_id))
        return events

    def receive(self, message: MessageReceived, *, message_id: UUID) -> list[EventPayload]:
        self._require_exists()
        if self.message_by_external_id(message.external_message_id) is not None:
            return []
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed; the message opens a new one")
        return [self._inbound_appended(message, message_id)]

    def assign_by_routing(
        self,
        operator_id: str,
        *,
        line_id: str,
        strategy: str | None = None,
        expected_operator_id: str | None = None,
    ) -> list[EventPayload]:
        """Routing's AssignDialog: valid only while open and unassigned (or, for a re-route,
        still held by the operator routing expects)."""
        self._require_exists()
        if line_id != self.line_id:
            raise DialogNotOpen(f"dialog is on line {self.line_id!r}, not {line_id!r}")
        if not self.is_open:
            raise DialogNotOpen("dialog is closed")
        if self.assignee_id == operator_id:
            return []
        if self.assignee_id is not None and self.assignee_id != expected_operator_id:
            raise DialogNotOpen(f"dialog is already assigned to {self.assignee_id}")
        return [
            DialogAssigned(
                dialog_id=self.id,
                operator_id=operator_id,
                assigned_by=AssignedBy.ROUTING,
                strategy=strategy,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            )
        ]

    def take(
        self, actor_id: str, *, may_take_over: bool, load: Load | None = NO_LIMIT
    ) -> list[EventPayload]:
        """Take (or, with the permission, take over) the dialog as the responsible operator.

        `load` is the caller's load for the max_dialogs rule (None: not counted yet, raises
        `LoadNeeded` if the take would record anything)."""
        self._require_exists()
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if self.assignee_id == actor_id:
            return []
        if self.assignee_id is not None and not may_take_over:
            # No name: the caller may not be allowed to see whose dialog this is.
            raise AlreadyAssigned("the dialog is already assigned to another operator")
        _require_room(load)
        return [
            DialogAssigned(
                dialog_id=self.id,
                operator_id=actor_id,
                assigned_by=AssignedBy.SUPERVISOR if self.assignee_id else AssignedBy.OPERATOR,
                actor_id=actor_id,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            )
        ]

    def reply(
        self,
        actor_id: str,
        text: str,
        *,
        message_id: UUID,
        client_message_id: str,
        now: datetime,
        max_text_length: int,
        reply_to: UUID | None = None,
        is_supervisor: bool = False,
        load: Load | None = NO_LIMIT,
    ) -> list[EventPayload]:
        """An operator's message to the customer; the first to answer an unassigned dialog
        becomes responsible for it (a take: `load` as for `take`)."""
        self._require_exists()
        if self.message_by_client_id(actor_id, client_message_id) is not None:
            return []  # a client retry: the message is already recorded
        validate_text(text, max_text_length)
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if reply_to is not None and reply_to not in self.messages:
            raise UnknownMessage("reply_to is not a message of this dialog")
        events: list[EventPayload] = []
        if self.assignee_id is None:
            events += self.take(actor_id, may_take_over=False, load=load)
        elif not (self.is_on_dialog(actor_id) or is_supervisor):
            raise NotAssignedToYou("the dialog is assigned to another operator")
        else:
            events += self.join_by_writing(actor_id)
        events.append(
            MessageAppended(
                dialog_id=self.id,
                message_id=message_id,
                direction=Direction.OUT,
                author_id=actor_id,
                text=text,
                reply_to=reply_to,
                client_message_id=client_message_id,
                status=DeliveryStatus.QUEUED,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        )
        return events

    def close(
        self, actor_id: str | None, reason: CloseReason, *, take_first: bool = False
    ) -> list[EventPayload]:
        """Close. `take_first`: an operator closing an unassigned dialog accepts it first
        ("accept and close"), so that it stays theirs, in their Closed tab; the take is
        momentary, so it is not held against their max_dialogs."""
        self._require_exists()
        if not self.is_open:
            return []  # closing twice is harmless (client retries, racing timers)
        return self._take_then_close(actor_id, reason, take_first)

    def mark_spam(self, actor_id: str, *, take_first: bool = False) -> list[EventPayload]:
        """A forced close with reason spam. A closed dialog may still be marked as spam (an
        operator often sees it is spam only after closing it): its status becomes spam."""
        self._require_exists()
        if self.status == DialogStatus.SPAM:
            return []
        return self._take_then_close(actor_id, CloseReason.SPAM, take_first)

    def _take_then_close(
        self, actor_id: str | None, reason: CloseReason, take_first: bool
    ) -> list[EventPayload]:
        events: list[EventPayload] = []
        operator_id = self.assignee_id
        if take_first and actor_id is not None and self.is_open and operator_id is None:
            events += self.take(actor_id, may_take_over=False)
            operator_id = actor_id
        events.append(
            DialogClosed(
                dialog_id=self.id,
                reason=reason,
                actor_id=actor_id,
                line_id=self.line_id,
                operator_id=operator_id,
            )
        )
        return events

    def reopen(
        self,
        actor_id: str,
        *,
        latest_dialog_id: UUID | None = None,
        load: Load | None = NO_LIMIT,
    ) -> list[EventPayload]:
        """Reopen, if this is still the conversation's latest dialog (`latest_dialog_id`):
        the customer's next message goes to the latest one, so a reopened older dialog would
        never hear from them again. The actor becomes the assignee: a take (`load` as there)."""
        self._require_exists()
        if self.is_open:
            raise DialogNotClosed("the dialog is not closed")
        if latest_dialog_id is not None and latest_dialog_id != self.id:
            raise NewerDialogExists(
                f"the customer has a newer dialog ({latest_dialog_id}): reopen that one"
            )
        _require_room(load)
        return [
            DialogReopened(
                dialog_id=self.id, actor_id=actor_id, operator_id=actor_id, line_id=self.line_id
            )
        ]

    def return_to_queue(
        self, reason: str, *, operator_id: str | None = None, actor_id: str = "routing"
    ) -> list[EventPayload]:
        """Unassign so routing queues it again: a transfer to the dialog's own line."""
        self._require_exists()
        if not self.is_open or self.assignee_id is None:
            raise DialogNotOpen("the dialog is not assigned")
        if operator_id is not None and operator_id != self.assignee_id:
            raise DialogNotOpen(f"the dialog is now assigned to {self.assignee_id}")
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_line_id=self.line_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            )
        ]

    # -- transfer, participants, notes --------------------------------------------------------

    def transfer_to_operator(
        self,
        actor_id: str,
        operator_id: str,
        *,
        line_operators: Sequence[str],
        by_supervisor: bool,
        reason: str | None = None,
        expected_assignee: str | None = None,
        load: Load | None = NO_LIMIT,
    ) -> list[EventPayload]:
        """Hand the dialog to `operator_id`, who must serve its line (`line_operators`).

        A closed dialog changes hands and stays closed (it then holds nobody's capacity, so
        `load`, the target's for the max_dialogs rule, is asked only of an open one).
        `expected_assignee`: the assignee the caller saw; if another transfer or take got
        there first, the caller is told instead of silently overriding it."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if operator_id not in line_operators:
            raise NotOnLine(f"{operator_id} does not serve line {self.line_id!r}")
        if operator_id == self.assignee_id:
            return []
        if self.is_open:
            _require_room(load)
        by = AssignedBy.SUPERVISOR if by_supervisor else AssignedBy.OPERATOR
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_operator_id=operator_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            ),
            DialogAssigned(
                dialog_id=self.id,
                operator_id=operator_id,
                assigned_by=by,
                actor_id=actor_id,
                previous_operator_id=self.assignee_id,
                line_id=self.line_id,
            ),
        ]

    def transfer_to_line(
        self,
        actor_id: str,
        line_id: str,
        *,
        reason: str | None = None,
        expected_assignee: str | None = None,
    ) -> list[EventPayload]:
        """Move the dialog to another line: it waits in that line's queue and its routing
        assigns it (a closed one just changes line and stays closed, with no assignee)."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if line_id == self.line_id:
            return self.transfer_to_queue(actor_id, reason=reason)
        return [
            DialogTransferred(
                dialog_id=self.id,
                from_operator_id=self.assignee_id,
                to_line_id=line_id,
                from_line_id=self.line_id,
                reason=reason,
                actor_id=actor_id,
            )
        ]

    def transfer_to_queue(
        self, actor_id: str, *, reason: str | None = None, expected_assignee: str | None = None
    ) -> list[EventPayload]:
        """Back to its line's queue: ReturnToQueue's semantics (routing assigns it again)."""
        self._require_exists()
        self._require_assignee(expected_assignee)
        if not self.is_open:
            raise DialogIsClosed("a closed dialog waits in no queue; reopen it first")
        if self.assignee_id is None:
            return []  # it is in the queue already
        return self.return_to_queue(reason or "transferred to the queue", actor_id=actor_id)

    def join(self, operator_id: str, *, actor_id: str) -> list[EventPayload]:
        """`operator_id` takes part (joins, or is invited by `actor_id`)."""
        self._require_exists()
        if self.is_on_dialog(operator_id):
            return []
        return [ParticipantJoined(dialog_id=self.id, operator_id=operator_id, actor_id=actor_id)]

    def join_by_writing(self, actor_id: str) -> list[EventPayload]:
        """A supervisor writing into someone's dialog takes part in it from then on (the
        caller decided they may write; an assignee or participant joins nothing)."""
        if self.assignee_id is None:
            return []
        return self.join(actor_id, actor_id=actor_id)

    def leave(self, operator_id: str) -> list[EventPayload]:
        """A participant leaves. The assignee hands the dialog on instead (transfer), so the
        only operator on a dialog can never leave it to nobody."""
        self._require_exists()
        if not self.is_on_dialog(operator_id):
            return []
        members = {*self.participants, *([self.assignee_id] if self.assignee_id else [])}
        if members == {operator_id}:
            raise LastOperator("you are the only operator on this dialog")
        if operator_id == self.assignee_id:
            raise LastOperator("you are responsible for this dialog: transfer it to leave it")
        return [ParticipantLeft(dialog_id=self.id, operator_id=operator_id, actor_id=operator_id)]

    def add_note(
        self,
        actor_id: str,
        text: str,
        *,
        message_id: UUID,
        mentions: Sequence[str],
        now: datetime,
        max_text_length: int,
        client_message_id: str | None = None,
    ) -> list[EventPayload]:
        """A staff-only note, never sent to the customer; `mentions` may read the dialog."""
        self._require_exists()
        if message_id in self.messages:
            return []  # a client retry
        validate_text(text, max_text_length)
        return [
            *self.join_by_writing(actor_id),
            MessageAppended(
                dialog_id=self.id,
                message_id=message_id,
                direction=Direction.NOTE,
                author_id=actor_id,
                text=text,
                mentions=tuple(mentions),
                client_message_id=client_message_id,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            ),
        ]

    def _require_assignee(self, expected: str | None) -> None:
        if expected is not None and expected != self.assignee_id:
            raise AssigneeChanged(
                f"the dialog is no longer with {expected}; look again before transferring"
            )

    def update_delivery(
        self,
        message_id: UUID,
        status: DeliveryStatus,
        *,
        provider_message_id: str | None = None,
        reason: str | None = None,
    ) -> list[EventPayload]:
        self._require_exists()
        message = self.messages.get(message_id)
        if message is None or message.direction != Direction.OUT:
            raise UnknownMessage(f"no outbound message {message_id} in this dialog")
        if not delivery_advances(message.status, status):
            return []
        return [
            MessageDeliveryUpdated(
                dialog_id=self.id,
                message_id=message_id,
                status=status,
                reason=reason,
                provider_message_id=provider_message_id,
            )
        ]

    def edit_outbound(
        self,
        actor_id: str,
        message_id: UUID,
        text: str,
        *,
        now: datetime,
        max_text_length: int,
        is_supervisor: bool = False,
    ) -> list[EventPayload]:
        """The author (or a supervisor) corrects a message sent to the customer; outbound
        applies it at the provider."""
        message = self._changeable(actor_id, message_id, MessageChange.EDIT, now, is_supervisor)
        if message.deleted:
            raise MessageIsDeleted("the message was deleted")
        validate_text(text, max_text_length)
        return [
            DialogMessageEdited(
                dialog_id=self.id,
                message_id=message_id,
                text=text,
                actor_id=actor_id,
                edited_at=now,
            )
        ]

    def delete_outbound(
        self, actor_id: str, message_id: UUID, *, now: datetime, is_supervisor: bool = False
    ) -> list[EventPayload]:
        """The author (or a supervisor) takes a message back from the customer; the timeline
        keeps it, marked deleted, for the staff."""
        self._require_exists()
        found = self.messages.get(message_id)
        if found is not None and found.deleted:
            return []  # deleted before (a client retry)
        self._changeable(actor_id, message_id, MessageChange.DELETE, now, is_supervisor)
        return [MessageDeleted(dialog_id=self.id, message_id=message_id, actor_id=actor_id)]

    def _changeable(
        self,
        actor_id: str,
        message_id: UUID,
        change: MessageChange,
        now: datetime,
        is_supervisor: bool,
    ) -> MessageState:
        """The rules edit and delete share: an operator message of an open dialog, by its
        author or a supervisor, within the channel's window."""
        self._require_exists()
        message = self.messages.get(message_id)
        if message is None:
            raise MessageNotFound(f"no message {message_id} in this dialog")
        if message.direction != Direction.OUT:
            raise NotChangeable("only operator messages to the customer can be changed")
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed")
        if message.author_id != actor_id and not is_supervisor:
            raise NotAuthor("only the author or a supervisor may change this message")
        windows = CHANGE_WINDOWS.get(self.channel_type)
        if windows is None:
            raise ChangeNotSupported(f"{self.channel_type} cannot change a sent message")
        window = windows.of(change)
        if window is not None and message.sent_at is not None and now - message.sent_at > window:
            hours = window.total_seconds() / 3600
            raise WindowExpired(
                f"{self.channel_type} allows this only within {hours:g} h of sending"
            )
        return message

    def note_change_refused(
        self,
        message_id: UUID,
        change: MessageChange,
        reason: str,
        *,
        system_message_id: UUID,
        now: datetime,
    ) -> list[EventPayload]:
        """Outbound could not apply an edit or deletion (the provider refused it, or never had
        the message): a staff-only line, quoting the message, says so."""
        self._require_exists()
        if system_message_id in self.messages:
            return []
        what = "edit" if change is MessageChange.EDIT else "deletion"
        return [
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=(
                    f"The {what} of this message was not applied at the provider ({reason}): "
                    "if the customer got the message, they see it as it was"
                ),
                reply_to=message_id if message_id in self.messages else None,
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        ]

    def rename(self, actor_id: str, title: str) -> list[EventPayload]:
        """The staff-only title; the customer never sees it."""
        self._require_exists()
        title = title.strip()
        if not title:
            raise EmptyTitle("the title is empty")
        if title == self.title:
            return []
        return [DialogRenamed(dialog_id=self.id, title=title, actor_id=actor_id)]

    def pin(self, actor_id: str, *, is_supervisor: bool = False) -> list[EventPayload]:
        """Bitrix24's "pin to me": this customer's next dialogs on the line are offered to
        the actor first. One operator holds a pin; a supervisor may move it."""
        self._require_exists()
        if self.pinned_to == actor_id:
            return []
        events: list[EventPayload] = []
        if self.pinned_to is not None:
            if not is_supervisor:
                raise PinnedToOther("the dialog is pinned to another operator")
            events.append(self._pinned_event(self.pinned_to, pinned=False))
        events.append(self._pinned_event(actor_id, pinned=True))
        return events

    def unpin(self, actor_id: str, *, is_supervisor: bool = False) -> list[EventPayload]:
        self._require_exists()
        if self.pinned_to is None:
            return []
        if self.pinned_to != actor_id and not is_supervisor:
            raise PinnedToOther("the dialog is pinned to another operator")
        return [self._pinned_event(self.pinned_to, pinned=False)]

    def _pinned_event(self, operator_id: str, *, pinned: bool) -> DialogPinned:
        return DialogPinned(
            dialog_id=self.id,
            operator_id=operator_id,
            pinned=pinned,
            line_id=self.line_id,
            conversation_key=self.conversation_key,
        )

    def close_for_new(self, actor_id: str, *, is_supervisor: bool) -> list[EventPayload]:
        """Bitrix24's "close and start new": this dialog closes (see `open_after`)."""
        self._require_exists()
        if not self.is_open:
            raise DialogIsClosed("the dialog is closed: reopen it, or wait for the customer")
        return self.close(actor_id, CloseReason.OPERATOR, take_first=not is_supervisor)

    def open_after(
        self, previous: DialogState, actor_id: str, *, load: Load | None = NO_LIMIT
    ) -> list[EventPayload]:
        """This new dialog continues `previous`'s conversation, assigned to the actor (a take:
        `load` as there). It keeps the pin, as a dialog the customer opens would."""
        if self.exists:
            return []
        assert previous.customer is not None
        _require_room(load)
        prefix = f"{previous.channel_id}:"
        key = previous.conversation_key
        events: list[EventPayload] = [
            DialogOpened(
                dialog_id=self.id,
                line_id=previous.line_id,
                channel_id=previous.channel_id,
                channel_type=previous.channel_type,
                conversation_key=key,
                customer=previous.customer,
                external_user_id=previous.customer.external_id,
                external_chat_id=key[len(prefix) :] if key.startswith(prefix) else None,
                title=previous.title,
                previous_dialog_id=previous.id,
                customer_id=previous.crm.customer_id,
            ),
            DialogAssigned(
                dialog_id=self.id,
                operator_id=actor_id,
                assigned_by=AssignedBy.OPERATOR,
                actor_id=actor_id,
                line_id=previous.line_id,
            ),
        ]
        if previous.pinned_to is not None:
            events.append(
                DialogPinned(
                    dialog_id=self.id,
                    operator_id=previous.pinned_to,
                    pinned=True,
                    line_id=previous.line_id,
                    conversation_key=key,
                )
            )
        return events

    def edit_inbound(
        self,
        external_message_id: str,
        *,
        text: str | None,
        attachments: Sequence[Attachment],
        edited_at: datetime,
    ) -> list[EventPayload]:
        self._require_exists()
        message = self.message_by_external_id(external_message_id)
        if message is None:
            raise UnknownMessage(f"no inbound message {external_message_id!r} in this dialog")
        return [
            DialogMessageEdited(
                dialog_id=self.id,
                message_id=message.message_id,
                text=text,
                attachments=tuple(attachments),
                edited_at=edited_at,
                external_message_id=external_message_id,
            )
        ]

    def link_crm(
        self, link: DialogLinkedToCrm, *, system_message_id: UUID, now: datetime
    ) -> list[EventPayload]:
        """Mirror crm-link's link into the stream, with a staff-only system message."""
        self._require_exists()
        wanted = CrmLink(
            customer_id=link.customer_id,
            lead_id=link.lead_id or self.crm.lead_id,
            contact_id=link.contact_id or self.crm.contact_id,
            company_id=link.company_id or self.crm.company_id,
            deal_id=link.deal_id or self.crm.deal_id,
        )
        if wanted == self.crm:
            return []
        mirrored = DialogLinkedToCrm(dialog_id=self.id, **crm_fields(wanted))
        return [
            mirrored,
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=describe_crm_link(mirrored),
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            ),
        ]

    def require_version(self, expected: int | None) -> None:
        """Refuse a command decided on another version of the dialog (timers' commands)."""
        if expected is not None and self.version != expected:
            raise DialogChanged(
                f"the dialog is at version {self.version}, the command was decided at {expected}"
            )

    def note_sla(
        self, reached: SlaWarningReached | SlaBreached, *, system_message_id: UUID, now: datetime
    ) -> list[EventPayload]:
        """Routing's SLA marker as a staff-only line of the timeline, while it still holds
        (the customer's message it counts from is still the unanswered one)."""
        self._require_exists()
        if not self.is_open or self.waiting_since != reached.waiting_since:
            return []
        if system_message_id in self.messages:
            return []
        return [
            MessageAppended(
                dialog_id=self.id,
                message_id=system_message_id,
                direction=Direction.SYSTEM,
                text=describe_sla(reached),
                channel_id=self.channel_id,
                conversation_key=self.conversation_key,
                sent_at=now,
            )
        ]

    def mark_read(self, operator_id: str) -> list[EventPayload]:
        """Read for `operator_id` alone, up to the customer's latest message; nothing to
        record when they have read it all (a colleague's unread count is theirs)."""
        self._require_exists()
        if self.unread_for(operator_id) <= 0:
            return []
        latest = next(
            (m.message_id for m in reversed(self.messages.values()) if m.direction == Direction.IN),
            None,
        )
        return [DialogRead(dialog_id=self.id, operator_id=operator_id, up_to_message_id=latest)]

    def _require_exists(self) -> None:
        if not self.exists:
            raise DialogNotFound(f"dialog {self.id} not found")

    def _inbound_appended(self, message: MessageReceived, message_id: UUID) -> MessageAppended:
        quoted = message.reply_to_external_id
        # The customer may quote their own message or one of ours (its provider id).
        reply_to = (
            self._by_external_id.get(quoted) or self._by_provider_id.get(quoted) if quoted else None
        )
        return MessageAppended(
            dialog_id=self.id,
            message_id=message_id,
            direction=Direction.IN,
            text=message.text,
            attachments=message.attachments,
            reply_to=reply_to,
            external_message_id=message.external_message_id,
            channel_id=message.channel_id,
            conversation_key=message.conversation_key,
            sent_at=message.sent_at,
        )
