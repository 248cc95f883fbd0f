"""``openlines.dialogs.v1``: the Dialog aggregate's events, keyed by dialog id.

Only the dialogs service writes these. Operator ids, line ids and channel ids are the string ids
of the lines config; dialog, message and CRM ids are UUIDs.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from openlines.events.catalog.common import (
    AssignedBy,
    Attachment,
    Button,
    ChannelType,
    CloseReason,
    Customer,
    DeliveryStatus,
    Direction,
    MessageTemplate,
)
from openlines.events.envelope import EventPayload, UtcDatetime
from openlines.events.limits import (
    ATTACHMENTS_MAX,
    BUTTONS_MAX,
    MENTIONS_MAX,
    REASONS_MAX,
    Id,
    Name,
    Reason,
    Text,
)

__all__ = [
    "DialogAssigned",
    "DialogClassified",
    "DialogClosed",
    "DialogLinkedToCrm",
    "DialogMessageEdited",
    "DialogOpened",
    "DialogPinned",
    "DialogRated",
    "DialogRead",
    "DialogRenamed",
    "DialogReopened",
    "DialogTransferred",
    "MessageAppended",
    "MessageDeleted",
    "MessageDeliveryUpdated",
    "ParticipantJoined",
    "ParticipantLeft",
]


class DialogOpened(EventPayload):
    """A new dialog started in a conversation (first message, or the customer wrote again)."""

    TYPE: ClassVar[str] = "DialogOpened"

    dialog_id: UUID
    line_id: Id
    channel_id: Id
    channel_type: ChannelType
    conversation_key: Id
    customer: Customer
    external_user_id: Id
    title: Name
    """Staff-visible title; the customer never sees it."""
    external_chat_id: Id | None = None
    previous_dialog_id: UUID | None = None
    """The conversation's previous dialog (closed), if any."""
    customer_id: UUID | None = None
    """The CRM customer, when already known."""


class MessageAppended(EventPayload):
    """A message was added to the timeline: customer, operator reply, note or system."""

    TYPE: ClassVar[str] = "MessageAppended"

    dialog_id: UUID
    message_id: UUID
    direction: Direction
    author_id: Id | None = None
    """Operator id for out/note; None for customer and system messages."""
    text: Text | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=ATTACHMENTS_MAX)
    reply_to: UUID | None = None
    """``message_id`` of the quoted message."""
    mentions: tuple[Id, ...] = Field(default=(), max_length=MENTIONS_MAX)
    """Operator ids @mentioned (notes)."""
    client_message_id: Id | None = None
    """Idempotency key sent by the operator's client."""
    external_message_id: Id | None = None
    """Provider id for inbound messages."""
    status: DeliveryStatus | None = None
    """``queued`` for outbound messages; None for the others."""
    channel_id: Id
    conversation_key: Id
    sent_at: UtcDatetime
    template: MessageTemplate | None = None
    """An operator's message sent as the provider's approved template (`text`: filled in)."""
    buttons: tuple[Button, ...] = Field(default=(), max_length=BUTTONS_MAX)
    """Outbound only: buttons the customer may press under the message (the rating request's
    scale); channels without buttons get none (the text says what to answer instead)."""


class DialogAssigned(EventPayload):
    """The dialog got a responsible operator."""

    TYPE: ClassVar[str] = "DialogAssigned"

    dialog_id: UUID
    operator_id: Id
    assigned_by: AssignedBy
    actor_id: Id | None = None
    """Who did it: the operator or supervisor; None when routing assigned it."""
    strategy: Id | None = None
    """Routing strategy that chose the operator (``round_robin``, ``least_loaded``...)."""
    previous_operator_id: Id | None = None
    line_id: Id


class DialogTransferred(EventPayload):
    """Handed to another operator and/or another line (at least one ``to_*`` is set)."""

    TYPE: ClassVar[str] = "DialogTransferred"

    dialog_id: UUID
    from_operator_id: Id | None = None
    to_operator_id: Id | None = None
    to_line_id: Id | None = None
    from_line_id: Id | None = None
    reason: Reason | None = None
    actor_id: Id


class ParticipantJoined(EventPayload):
    """An extra operator joined the dialog."""

    TYPE: ClassVar[str] = "ParticipantJoined"

    dialog_id: UUID
    operator_id: Id
    actor_id: Id


class ParticipantLeft(EventPayload):
    """A participant left the dialog."""

    TYPE: ClassVar[str] = "ParticipantLeft"

    dialog_id: UUID
    operator_id: Id
    actor_id: Id


class DialogRenamed(EventPayload):
    TYPE: ClassVar[str] = "DialogRenamed"

    dialog_id: UUID
    title: Name
    actor_id: Id


class DialogPinned(EventPayload):
    """Pinned or unpinned in one operator's list."""

    TYPE: ClassVar[str] = "DialogPinned"

    dialog_id: UUID
    operator_id: Id
    pinned: bool
    line_id: Id | None = None
    conversation_key: Id | None = None
    """The customer's conversation: routing offers its next dialogs on the line to the
    operator it is pinned to (Bitrix24's "pin to me")."""


class DialogClosed(EventPayload):
    """Closed; ``reason=spam`` is the forced close of *Spam*."""

    TYPE: ClassVar[str] = "DialogClosed"

    dialog_id: UUID
    reason: CloseReason
    actor_id: Id | None = None
    """None for automatic closes."""
    line_id: Id
    operator_id: Id | None = None
    """The assignee at close time; routing frees its capacity."""


class DialogReopened(EventPayload):
    """A closed dialog went back to Active."""

    TYPE: ClassVar[str] = "DialogReopened"

    dialog_id: UUID
    actor_id: Id
    operator_id: Id
    """The responsible operator after reopening."""
    line_id: Id | None = None


class MessageDeliveryUpdated(EventPayload):
    """An outbound message's delivery status changed."""

    TYPE: ClassVar[str] = "MessageDeliveryUpdated"

    dialog_id: UUID
    message_id: UUID
    status: DeliveryStatus
    reason: Reason | None = None
    """Why it failed, e.g. ``not assigned to you`` or the provider's error."""
    provider_message_id: Id | None = None


class DialogMessageEdited(EventPayload):
    """A message in the timeline was edited (the dialogs ``MessageEdited``)."""

    TYPE: ClassVar[str] = "MessageEdited"

    dialog_id: UUID
    message_id: UUID
    text: Text | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=ATTACHMENTS_MAX)
    actor_id: Id | None = None
    """The operator; None when the customer edited (mirrored from inbound)."""
    edited_at: UtcDatetime
    external_message_id: Id | None = None


class MessageDeleted(EventPayload):
    TYPE: ClassVar[str] = "MessageDeleted"

    dialog_id: UUID
    message_id: UUID
    actor_id: Id | None = None
    """The operator; None when the customer deleted it."""


class DialogRead(EventPayload):
    """An operator read the dialog up to a message."""

    TYPE: ClassVar[str] = "DialogRead"

    dialog_id: UUID
    operator_id: Id
    up_to_message_id: UUID | None = None
    """None: everything up to now (bulk *mark all read*)."""


class DialogLinkedToCrm(EventPayload):
    """The dialog is linked to CRM entities. Written by crm-link on ``openlines.crm.v1`` and
    mirrored by dialogs on ``openlines.dialogs.v1`` (same class on both)."""

    TYPE: ClassVar[str] = "DialogLinkedToCrm"

    dialog_id: UUID
    customer_id: UUID
    lead_id: UUID | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None


class DialogRated(EventPayload):
    """A rating of the dialog: the customer's CSAT answer (``by=customer``, recorded once per
    dialog), or the operator's rating of the customer (``by=operator``, with a comment)."""

    TYPE: ClassVar[str] = "DialogRated"

    dialog_id: UUID
    score: int = Field(ge=1, le=10)
    scale: int = Field(ge=2, le=10)
    """The line's ``csat.scale`` when rated: ``score`` is 1..scale."""
    by: Literal["customer", "operator"]
    actor_id: Id | None = None
    """The operator (``by=operator``); None for the customer."""
    comment: Text | None = None
    line_id: Id | None = None
    operator_id: Id | None = None
    """The dialog's assignee when rated (whom a customer's CSAT is about)."""


class DialogClassified(EventPayload):
    """An operator classified the dialog with the values of its line's ``classification``
    config (a later classification replaces it)."""

    TYPE: ClassVar[str] = "DialogClassified"

    dialog_id: UUID
    type: Id | None = None
    reasons: tuple[Id, ...] = Field(default=(), max_length=REASONS_MAX)
    status: Id | None = None
    actor_id: Id
    line_id: Id | None = None
