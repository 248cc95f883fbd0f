"""The Dialog aggregate: pure state, explicit `apply` per event, decisions that return events.

No I/O here. A decision looks at the current state and either returns the events to record
(possibly none: the request is already satisfied) or raises a `DomainError`. State changes only
through `apply`, so replaying a stream rebuilds exactly the state the decisions saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from openlines.events.catalog import (
    AssignedBy,
    Attachment,
    ChannelType,
    CloseReason,
    Customer,
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
    MessageDeleted,
    MessageDeliveryUpdated,
    MessageReceived,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.envelope import EventPayload

# -- errors -------------------------------------------------------------------------------


class DomainError(Exception):
    """A decision refused; `code` is machine-readable (the API maps it to a status)."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DialogNotFound(DomainError):
    code = "not_found"


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


class TextTooLong(DomainError):
    code = "text_too_long"


class UnknownMessage(DomainError):
    code = "unknown_message"


class AtCapacity(DomainError):
    code = "at_capacity"


class LoadNeeded(Exception):
    """Not a refusal: the decision would make the caller the assignee under the max_dialogs
    rule, and the caller's load was not counted yet (the API counts it, under a lock, only
    when a decision needs it, then decides again)."""


# -- state --------------------------------------------------------------------------------


class DialogStatus(StrEnum):
    UNASSIGNED = "unassigned"
    ACTIVE = "active"
    CLOSED = "closed"
    SPAM = "spam"


OPEN_STATUSES = frozenset({DialogStatus.UNASSIGNED, DialogStatus.ACTIVE})


class SlaState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"


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


@dataclass
class MessageState:
    """What decisions need to know about one timeline message."""

    message_id: UUID
    direction: Direction
    status: DeliveryStatus | None = None
    external_message_id: str | None = None
    provider_message_id: str | None = None


@dataclass(frozen=True)
class CrmLink:
    customer_id: UUID | None = None
    lead_id: UUID | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None


@dataclass(frozen=True)
class LastMessage:
    text: str | None
    direction: Direction
    at: datetime


# Events that do not move a dialog up the list (DESIGN §9: system events and replies do).
_QUIET = (MessageDeliveryUpdated, DialogRead, DialogPinned, DialogMessageEdited, MessageDeleted)

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


def sla_state(
    waiting_since: datetime | None, now: datetime, warning_seconds: int, breach_seconds: int
) -> SlaState:
    """The RetailCRM marker: how long the customer's unanswered message has waited."""
    if waiting_since is None:
        return SlaState.OK
    waited = (now - waiting_since).total_seconds()
    if waited >= breach_seconds:
        return SlaState.BREACH
    if waited >= warning_seconds:
        return SlaState.WARNING
    return SlaState.OK


def validate_text(text: str, max_length: int) -> None:
    if not text.strip():
        raise EmptyMessage("message text is empty")
    if len(text) > max_length:
        raise TextTooLong(f"message text exceeds the channel's {max_length} characters")


@dataclass
class Dialog:
    id: UUID
    version: int = 0
    status: DialogStatus = DialogStatus.UNASSIGNED
    line_id: str = ""
    channel_id: str = ""
    channel_type: ChannelType = ChannelType.TELEGRAM
    conversation_key: str = ""
    customer: Customer | None = None
    title: str = ""
    assignee_id: str | None = None
    participants: list[str] = field(default_factory=list)
    waiting_since: datetime | None = None
    unread_count: int = 0
    last_message: LastMessage | None = None
    crm: CrmLink = CrmLink()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: dict[UUID, MessageState] = field(default_factory=dict)
    _by_external_id: dict[str, UUID] = field(default_factory=dict, repr=False)
    # Provider ids of our outbound messages (from MessageDeliveryUpdated): what a customer's
    # quote of an operator's message names.
    _by_provider_id: dict[str, UUID] = field(default_factory=dict, repr=False)
    # (author, client_message_id): each operator's client numbers its own messages.
    _by_client_id: dict[tuple[str | None, str], UUID] = field(default_factory=dict, repr=False)

    # -- reading --------------------------------------------------------------------------

    @classmethod
    def replay(cls, dialog_id: UUID, history: Iterable[tuple[EventPayload, datetime]]) -> Dialog:
        dialog = cls(dialog_id)
        for event, at in history:
            dialog.apply(event, at)
        return dialog

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def message_by_external_id(self, external_message_id: str) -> MessageState | None:
        found = self._by_external_id.get(external_message_id)
        return self.messages.get(found) if found else None

    def message_by_client_id(self, author_id: str, client_message_id: str) -> MessageState | None:
        found = self._by_client_id.get((author_id, client_message_id))
        return self.messages.get(found) if found else None

    def is_on_dialog(self, operator_id: str) -> bool:
        return operator_id == self.assignee_id or operator_id in self.participants

    # -- decisions ------------------------------------------------------------------------

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
        mirrored = DialogLinkedToCrm(dialog_id=self.id, **_asdict(wanted))
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
        self._require_exists()
        if self.unread_count == 0:
            return []
        return [DialogRead(dialog_id=self.id, operator_id=operator_id)]

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

    # -- applying -------------------------------------------------------------------------

    def apply(self, event: EventPayload, at: datetime) -> None:
        applier = _APPLIERS.get(type(event))
        if applier is None:
            raise TypeError(f"Dialog cannot apply {type(event).__name__}")
        applier(self, event)
        self.version += 1
        if self.created_at is None:
            self.created_at = at
        if not isinstance(event, _QUIET):
            self.updated_at = at

    def _opened(self, e: DialogOpened) -> None:
        self.status = DialogStatus.UNASSIGNED
        self.line_id = e.line_id
        self.channel_id = e.channel_id
        self.channel_type = e.channel_type
        self.conversation_key = e.conversation_key
        self.customer = e.customer
        self.title = e.title
        self.crm = CrmLink(customer_id=e.customer_id)

    def _appended(self, e: MessageAppended) -> None:
        self.messages[e.message_id] = MessageState(
            message_id=e.message_id,
            direction=e.direction,
            status=e.status,
            external_message_id=e.external_message_id,
        )
        if e.direction == Direction.IN:
            if e.external_message_id is not None:
                self._by_external_id[e.external_message_id] = e.message_id
            # The SLA clock starts at the first message nobody has answered yet.
            if self.waiting_since is None:
                self.waiting_since = e.sent_at
            self.unread_count += 1
        elif e.direction == Direction.OUT:
            if e.client_message_id is not None:
                self._by_client_id[(e.author_id, e.client_message_id)] = e.message_id
            self.waiting_since = None
            self.unread_count = 0
        if e.direction in (Direction.IN, Direction.OUT):
            self.last_message = LastMessage(e.text, e.direction, e.sent_at)

    def _assigned(self, e: DialogAssigned) -> None:
        self.assignee_id = e.operator_id
        self.status = DialogStatus.ACTIVE

    def _transferred(self, e: DialogTransferred) -> None:
        if e.to_line_id is not None:
            self.line_id = e.to_line_id
        self.assignee_id = e.to_operator_id
        self.status = DialogStatus.ACTIVE if e.to_operator_id else DialogStatus.UNASSIGNED

    def _closed(self, e: DialogClosed) -> None:
        # The assignee stays: it is who closed it, and they keep seeing it in Closed.
        self.status = DialogStatus.SPAM if e.reason == CloseReason.SPAM else DialogStatus.CLOSED
        self.waiting_since = None

    def _reopened(self, e: DialogReopened) -> None:
        self.status = DialogStatus.ACTIVE
        self.assignee_id = e.operator_id

    def _delivery_updated(self, e: MessageDeliveryUpdated) -> None:
        message = self.messages[e.message_id]
        message.status = e.status
        if e.provider_message_id is not None:
            message.provider_message_id = e.provider_message_id
            if message.direction == Direction.OUT:
                self._by_provider_id[e.provider_message_id] = e.message_id

    def _linked(self, e: DialogLinkedToCrm) -> None:
        self.crm = CrmLink(**{k: getattr(e, k) for k in _asdict(CrmLink())})

    def _read(self, _: DialogRead) -> None:
        self.unread_count = 0

    def _joined(self, e: ParticipantJoined) -> None:
        if e.operator_id not in self.participants:
            self.participants.append(e.operator_id)

    def _left(self, e: ParticipantLeft) -> None:
        if e.operator_id in self.participants:
            self.participants.remove(e.operator_id)

    def _renamed(self, e: DialogRenamed) -> None:
        self.title = e.title

    def _ignored(self, _: EventPayload) -> None:
        """Recorded for the timeline only; no decision depends on it."""


_APPLIERS: dict[type[EventPayload], Callable[[Dialog, Any], None]] = {
    DialogOpened: Dialog._opened,
    MessageAppended: Dialog._appended,
    DialogAssigned: Dialog._assigned,
    DialogTransferred: Dialog._transferred,
    DialogClosed: Dialog._closed,
    DialogReopened: Dialog._reopened,
    MessageDeliveryUpdated: Dialog._delivery_updated,
    DialogLinkedToCrm: Dialog._linked,
    DialogRead: Dialog._read,
    ParticipantJoined: Dialog._joined,
    ParticipantLeft: Dialog._left,
    DialogRenamed: Dialog._renamed,
    DialogMessageEdited: Dialog._ignored,
    MessageDeleted: Dialog._ignored,
    DialogPinned: Dialog._ignored,
}


def _require_room(load: Load | None) -> None:
    """The max_dialogs rule, for a decision that makes the caller the assignee."""
    if load is None:
        raise LoadNeeded
    if load.full:
        raise AtCapacity(
            f"you already hold {load.active} open dialogs, your maximum is {load.limit}"
        )


def _asdict(link: CrmLink) -> dict[str, UUID | None]:
    return {
        "customer_id": link.customer_id,
        "lead_id": link.lead_id,
        "contact_id": link.contact_id,
        "company_id": link.company_id,
        "deal_id": link.deal_id,
    }


# -- staff-facing descriptions (system messages in the timeline) ---------------------------


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


def describe(event: EventPayload) -> str | None:
    """The system line a state change shows in the timeline (None: it shows none)."""
    match event:
        case DialogAssigned(assigned_by=AssignedBy.ROUTING):
            how = f" ({event.strategy})" if event.strategy else ""
            return f"Assigned to {event.operator_id} by routing{how}"
        case DialogAssigned(previous_operator_id=str() as previous):
            return f"{event.operator_id} took the dialog over from {previous}"
        case DialogAssigned():
            return f"{event.operator_id} took the dialog"
        case DialogTransferred(to_operator_id=None):
            return f"Returned to the queue ({event.reason or 'no reason'})"
        case DialogTransferred():
            return f"Transferred to {event.to_operator_id or event.to_line_id}"
        case DialogClosed(reason=CloseReason.SPAM):
            return f"Marked as spam by {event.actor_id}"
        case DialogClosed(actor_id=str() as actor):
            return f"Closed by {actor}"
        case DialogClosed():
            return f"Closed automatically ({event.reason})"
        case DialogReopened():
            return f"Reopened by {event.actor_id}"
    return None
