"""The Dialog aggregate's decisions: each looks at the state and returns the events to record.

A decision returns the events (possibly none: the request is already satisfied) or raises a
`DomainError`; it never changes the state itself (`apply`, in `state`, does). No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from openlines.dialogs.domain.descriptions import describe_crm_link
from openlines.dialogs.domain.state import CrmLink, DialogState, DialogStatus, crm_fields
from openlines.events.catalog import (
    AssignedBy,
    Attachment,
    CloseReason,
    DeliveryStatus,
    DialogAssigned,
    DialogClosed,
    DialogLinkedToCrm,
    DialogMessageEdited,
    DialogOpened,
    DialogRead,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    MessageDeliveryUpdated,
    MessageReceived,
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
    ) -> list[EventPayload]:
        if self.exists:
            return []  # the same inbound event was processed before: nothing new
        customer = message.customer
        return [
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
            ),
            self._inbound_appended(message, message_id),
        ]

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
