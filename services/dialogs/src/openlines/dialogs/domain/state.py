"""The Dialog aggregate's state: what its events say, changed only by `apply`.

No I/O and no decisions here (those are in `decisions`): replaying a stream through `apply`
rebuilds exactly the state the decisions saw. A snapshot is this state as JSON, so that a long
dialog is loaded from its latest snapshot plus the events after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Self
from uuid import UUID

from openlines.events.catalog import (
    ChannelType,
    CloseReason,
    Customer,
    DeliveryStatus,
    DialogAssigned,
    DialogClassified,
    DialogClosed,
    DialogLinkedToCrm,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    DialogRated,
    DialogRead,
    DialogRenamed,
    DialogReopened,
    DialogTransferred,
    Direction,
    MessageAppended,
    MessageDeleted,
    MessageDeliveryUpdated,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.catalog.common import OPEN_STATUSES, DialogStatus
from openlines.events.envelope import EventPayload

# The shape of `DialogState.to_snapshot`: a snapshot of another format is replayed instead.
SNAPSHOT_FORMAT = 8


class SlaState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"


@dataclass(slots=True)
class MessageState:
    """What decisions need to know about one timeline message."""

    message_id: UUID
    direction: Direction
    status: DeliveryStatus | None = None
    external_message_id: str | None = None
    provider_message_id: str | None = None
    author_id: str | None = None
    sent_at: datetime | None = None
    """Operator messages only: when it was recorded; edit and delete windows count from
    here (others leave it None: a snapshot of a long dialog parses fewer dates)."""
    deleted: bool = False


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


def sla_state(
    waiting_since: datetime | None, now: datetime, warning_seconds: float, breach_seconds: float
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


@dataclass
class DialogState:
    """What the dialog's events say so far; changed only by `apply`."""

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
    pinned_to: str | None = None
    """Bitrix24's "pin to me": the operator this customer's next dialogs go to first."""
    mentioned: list[str] = field(default_factory=list)
    """Operators @mentioned in its notes: they may read it (the access policy's facts)."""
    waiting_since: datetime | None = None
    last_inbound_at: datetime | None = None
    """When the customer last wrote (WhatsApp's customer-service window counts from it)."""
    inbound_count: int = 0
    """Customer messages so far: what an operator has not read is this minus their mark."""
    read_marks: dict[str, int] = field(default_factory=dict)
    """Per operator: how many of the customer's messages they have read (unread is per
    operator: one colleague's reading never clears another's count)."""
    last_message: LastMessage | None = None
    crm: CrmLink = CrmLink()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    """When it last stopped being open (closed or spam); None while open."""
    messages: dict[UUID, MessageState] = field(default_factory=dict)
    customer_rating: tuple[int, int] | None = None
    """The customer's CSAT answer, (score, scale): recorded once."""
    operator_rating: tuple[str, int, int, str | None] | None = None
    """The latest rating of the customer by an operator: (operator, score, scale, comment)."""
    classification: tuple[str | None, tuple[str, ...], str | None, str] | None = None
    """The latest (type, reasons, status, operator)."""
    _by_external_id: dict[str, UUID] = field(default_factory=dict, repr=False)
    # Provider ids of our outbound messages (from MessageDeliveryUpdated): what a customer's
    # quote of an operator's message names.
    _by_provider_id: dict[str, UUID] = field(default_factory=dict, repr=False)
    # (author, client_message_id): each operator's client numbers its own messages.
    _by_client_id: dict[tuple[str | None, str], UUID] = field(default_factory=dict, repr=False)

    # -- reading --------------------------------------------------------------------------

    @classmethod
    def replay(cls, dialog_id: UUID, history: Iterable[tuple[EventPayload, datetime]]) -> Self:
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

    def unread_for(self, operator_id: str) -> int:
        return self.inbound_count - self.read_marks.get(operator_id, 0)

    def is_on_dialog(self, operator_id: str) -> bool:
        return operator_id == self.assignee_id or operator_id in self.participants

    # -- snapshots ------------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """The whole state as JSON (compact rows for the messages: a dialog may hold
        thousands). Change SNAPSHOT_FORMAT with its shape."""
        last = self.last_message
        crm = self.crm
        place = {message_id: i for i, message_id in enumerate(self.messages)}
        return {
            "id": str(self.id),
            "version": self.version,
            "status": self.status.value,
            "line_id": self.line_id,
            "channel_id": self.channel_id,
            "channel_type": self.channel_type.value,
            "conversation_key": self.conversation_key,
            "customer": self.customer.model_dump(mode="json") if self.customer else None,
            "title": self.title,
            "assignee_id": self.assignee_id,
            "participants": list(self.participants),
            "pinned_to": self.pinned_to,
            "mentioned": list(self.mentioned),
            "waiting_since": _iso(self.waiting_since),
            "last_inbound_at": _iso(self.last_inbound_at),
            "inbound_count": self.inbound_count,
            "read_marks": dict(self.read_marks),
            "last_message": (
                [last.text, last.direction.value, last.at.isoformat()] if last else None
            ),
            "crm": [_str(v) for v in crm_fields(crm).values()],
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "closed_at": _iso(self.closed_at),
            "customer_rating": list(self.customer_rating) if self.customer_rating else None,
            "operator_rating": list(self.operator_rating) if self.operator_rating else None,
            "classification": (
                [c[0], list(c[1]), c[2], c[3]] if (c := self.classification) is not None else None
            ),
            "messages": [
                [
                    str(m.message_id),
                    m.direction.value,
                    m.status.value if m.status else None,
                    m.external_message_id,
                    m.provider_message_id,
                    m.author_id,
                    _iso(m.sent_at),
                    m.deleted,
                ]
                for m in self.messages.values()
            ],
            # The lookups name messages by their place in "messages": parsing a UUID costs
            # more than the rest of a message's row (a 5,000-message dialog has 10,000+).
            "by_external_id": {k: place[v] for k, v in self._by_external_id.items()},
            "by_provider_id": {k: place[v] for k, v in self._by_provider_id.items()},
            "by_client_id": [[a, c, place[v]] for (a, c), v in self._by_client_id.items()],
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        last = data["last_message"]
        messages = [
            MessageState(
                UUID(m[0]),
                _DIRECTIONS[m[1]],
                _STATUSES[m[2]] if m[2] else None,
                m[3],
                m[4],
                m[5],
                _at(m[6]),
                m[7],
            )
            for m in data["messages"]
        ]
        ids = [m.message_id for m in messages]
        return cls(
            id=UUID(data["id"]),
            version=data["version"],
            status=DialogStatus(data["status"]),
            line_id=data["line_id"],
            channel_id=data["channel_id"],
            channel_type=ChannelType(data["channel_type"]),
            conversation_key=data["conversation_key"],
            customer=Customer.model_validate(data["customer"]) if data["customer"] else None,
            title=data["title"],
            assignee_id=data["assignee_id"],
            participants=list(data["participants"]),
            pinned_to=data["pinned_to"],
            mentioned=list(data["mentioned"]),
            waiting_since=_at(data["waiting_since"]),
            last_inbound_at=_at(data["last_inbound_at"]),
            inbound_count=data["inbound_count"],
            read_marks=dict(data["read_marks"]),
            last_message=(
                LastMessage(last[0], Direction(last[1]), datetime.fromisoformat(last[2]))
                if last
                else None
            ),
            crm=CrmLink(*(_uuid(v) for v in data["crm"])),
            created_at=_at(data["created_at"]),
            updated_at=_at(data["updated_at"]),
            closed_at=_at(data["closed_at"]),
            customer_rating=((r[0], r[1]) if (r := data["customer_rating"]) is not None else None),
            operator_rating=(
                (o[0], o[1], o[2], o[3]) if (o := data["operator_rating"]) is not None else None
            ),
            classification=(
                (c[0], tuple(c[1]), c[2], c[3])
                if (c := data["classification"]) is not None
                else None
            ),
            messages={m.message_id: m for m in messages},
            _by_external_id={k: ids[i] for k, i in data["by_external_id"].items()},
            _by_provider_id={k: ids[i] for k, i in data["by_provider_id"].items()},
            _by_client_id={(a, c): ids[i] for a, c, i in data["by_client_id"]},
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
        if self.is_open:
            self.closed_at = None
        elif self.closed_at is None:
            self.closed_at = at

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
            author_id=e.author_id,
            sent_at=e.sent_at if e.direction == Direction.OUT else None,
        )
        if e.direction == Direction.IN:
            if e.external_message_id is not None:
                self._by_external_id[e.external_message_id] = e.message_id
            # RetailCRM's SLA counts from the customer's last message while it is unanswered.
            self.waiting_since = e.sent_at
            self.last_inbound_at = max(e.sent_at, self.last_inbound_at or e.sent_at)
            self.inbound_count += 1
        elif e.direction == Direction.OUT:
            if e.client_message_id is not None:
                self._by_client_id[(e.author_id, e.client_message_id)] = e.message_id
            self.waiting_since = None
            if e.author_id is not None:  # whoever answers has read what they answer
                self.read_marks[e.author_id] = self.inbound_count
        elif e.direction == Direction.NOTE:
            self.mentioned += [m for m in e.mentions if m not in self.mentioned]
        if e.direction in (Direction.IN, Direction.OUT):
            self.last_message = LastMessage(e.text, e.direction, e.sent_at)

    def _hand_to(self, operator_id: str | None) -> None:
        """A new assignee; a participant who becomes it takes part as the assignee only (the
        participants are the operators on it besides the assignee)."""
        self.assignee_id = operator_id
        if operator_id in self.participants:
            self.participants.remove(operator_id)

    def _assigned(self, e: DialogAssigned) -> None:
        self._hand_to(e.operator_id)
        if self.is_open:  # reassigning a closed dialog does not reopen it (DESIGN §9)
            self.status = DialogStatus.ACTIVE

    def _transferred(self, e: DialogTransferred) -> None:
        if e.to_line_id is not None:
            self.line_id = e.to_line_id
        self._hand_to(e.to_operator_id)
        if self.is_open:  # a closed dialog changes hands and stays closed
            self.status = DialogStatus.ACTIVE if e.to_operator_id else DialogStatus.UNASSIGNED

    def _closed(self, e: DialogClosed) -> None:
        # The assignee stays: it is who closed it, and they keep seeing it in Closed.
        self.status = DialogStatus.SPAM if e.reason == CloseReason.SPAM else DialogStatus.CLOSED
        self.waiting_since = None

    def _reopened(self, e: DialogReopened) -> None:
        self.status = DialogStatus.ACTIVE
        self._hand_to(e.operator_id)

    def _delivery_updated(self, e: MessageDeliveryUpdated) -> None:
        message = self.messages[e.message_id]
        message.status = e.status
        if e.provider_message_id is not None:
            message.provider_message_id = e.provider_message_id
            if message.direction == Direction.OUT:
                self._by_provider_id[e.provider_message_id] = e.message_id

    def _linked(self, e: DialogLinkedToCrm) -> None:
        self.crm = CrmLink(**{k: getattr(e, k) for k in crm_fields(CrmLink())})

    def _read(self, e: DialogRead) -> None:
        # `mark_read` names the latest customer message, so a DialogRead reads everything
        # the customer wrote before it in the stream (`up_to_message_id` None says the same).
        self.read_marks[e.operator_id] = self.inbound_count

    def _joined(self, e: ParticipantJoined) -> None:
        if e.operator_id not in self.participants:
            self.participants.append(e.operator_id)

    def _left(self, e: ParticipantLeft) -> None:
        if e.operator_id in self.participants:
            self.participants.remove(e.operator_id)

    def _renamed(self, e: DialogRenamed) -> None:
        self.title = e.title

    def _pinned(self, e: DialogPinned) -> None:
        if e.pinned:
            self.pinned_to = e.operator_id
        elif self.pinned_to == e.operator_id:
            self.pinned_to = None

    def _message_deleted(self, e: MessageDeleted) -> None:
        message = self.messages.get(e.message_id)
        if message is not None:
            message.deleted = True

    def _rated(self, e: DialogRated) -> None:
        if e.by == "customer":
            self.customer_rating = (e.score, e.scale)
        else:
            self.operator_rating = (e.actor_id or "", e.score, e.scale, e.comment)

    def _classified(self, e: DialogClassified) -> None:
        self.classification = (e.type, tuple(e.reasons), e.status, e.actor_id)

    def _ignored(self, _: EventPayload) -> None:
        """Recorded for the timeline only; no decision depends on it."""


_APPLIERS: dict[type[EventPayload], Callable[[DialogState, Any], None]] = {
    DialogOpened: DialogState._opened,
    MessageAppended: DialogState._appended,
    DialogAssigned: DialogState._assigned,
    DialogTransferred: DialogState._transferred,
    DialogClosed: DialogState._closed,
    DialogReopened: DialogState._reopened,
    MessageDeliveryUpdated: DialogState._delivery_updated,
    DialogLinkedToCrm: DialogState._linked,
    DialogRead: DialogState._read,
    ParticipantJoined: DialogState._joined,
    ParticipantLeft: DialogState._left,
    DialogRenamed: DialogState._renamed,
    DialogMessageEdited: DialogState._ignored,
    MessageDeleted: DialogState._message_deleted,
    DialogPinned: DialogState._pinned,
    DialogRated: DialogState._rated,
    DialogClassified: DialogState._classified,
}


def crm_fields(link: CrmLink) -> dict[str, UUID | None]:
    return {
        "customer_id": link.customer_id,
        "lead_id": link.lead_id,
        "contact_id": link.contact_id,
        "company_id": link.company_id,
        "deal_id": link.deal_id,
    }


_DIRECTIONS = {d.value: d for d in Direction}
_STATUSES = {s.value: s for s in DeliveryStatus}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _str(value: UUID | None) -> str | None:
    return str(value) if value else None


def _uuid(text: str | None) -> UUID | None:
    return UUID(text) if text else None
