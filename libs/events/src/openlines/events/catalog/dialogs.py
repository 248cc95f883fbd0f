"""``openlines.dialogs.v1``: the Dialog aggregate's events, keyed by dialog id.

Only the dialogs service writes these. Operator ids, line ids and channel ids are the string ids
of the lines config; dialog, message and CRM ids are UUIDs.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from openlines.events.catalog.common import (
    AssignedBy,
    Attachment,
    ChannelType,
    CloseReason,
    Customer,
    DeliveryStatus,
    Direction,
)
from openlines.events.envelope import EventPayload, UtcDatetime

__all__ = [
    "DialogAssigned",
    "DialogClosed",
    "DialogLinkedToCrm",
    "DialogMessageEdited",
    "DialogOpened",
    "DialogPinned",
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
    line_id: str
    channel_id: str
    channel_type: ChannelType
    conversation_key: str
    customer: Customer
    external_user_id: str
    title: str
    """Staff-visible title; the customer never sees it."""
    external_chat_id: str | None = None
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
    author_id: str | None = None
    """Operator id for out/note; None for customer and system messages."""
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to: UUID | None = None
    """``message_id`` of the quoted message."""
    mentions: tuple[str, ...] = ()
    """Operator ids @mentioned (notes)."""
    client_message_id: str | None = None
    """Idempotency key sent by the operator's client."""
    external_message_id: str | None = None
    """Provider id for inbound messages."""
    status: DeliveryStatus | None = None
    """``queued`` for outbound messages; None for the others."""
    channel_id: str
    conversation_key: str
    sent_at: UtcDatetime


class DialogAssigned(EventPayload):
    """The dialog got a responsible operator."""

    TYPE: ClassVar[str] = "DialogAssigned"

    dialog_id: UUID
    operator_id: str
    assigned_by: AssignedBy
    actor_id: str | None = None
    """Who did it: the operator or supervisor; None when routing assigned it."""
    strategy: str | None = None
    """Routing strategy that chose the operator (``round_robin``, ``least_loaded``...)."""
    previous_operator_id: str | None = None
    line_id: str


class DialogTransferred(EventPayload):
    """Handed to another operator and/or another line (at least one ``to_*`` is set)."""

    TYPE: ClassVar[str] = "DialogTransferred"

    dialog_id: UUID
    from_operator_id: str | None = None
    to_operator_id: str | None = None
    to_line_id: str | None = None
    from_line_id: str | None = None
    reason: str | None = None
    actor_id: str


class ParticipantJoined(EventPayload):
    """An extra operator joined the dialog."""

    TYPE: ClassVar[str] = "ParticipantJoined"

    dialog_id: UUID
    operator_id: str
    actor_id: str


class ParticipantLeft(EventPayload):
    """A participant left the dialog."""

    TYPE: ClassVar[str] = "ParticipantLeft"

    dialog_id: UUID
    operator_id: str
    actor_id: str


class DialogRenamed(EventPayload):
    TYPE: ClassVar[str] = "DialogRenamed"

    dialog_id: UUID
    title: str
    actor_id: str


class DialogPinned(EventPayload):
    """Pinned or unpinned in one operator's list."""

    TYPE: ClassVar[str] = "DialogPinned"

    dialog_id: UUID
    operator_id: str
    pinned: bool


class DialogClosed(EventPayload):
    """Closed; ``reason=spam`` is the forced close of *Spam*."""

    TYPE: ClassVar[str] = "DialogClosed"

    dialog_id: UUID
    reason: CloseReason
    actor_id: str | None = None
    """None for automatic closes."""
    line_id: str
    operator_id: str | None = None
    """The assignee at close time; routing frees its capacity."""


class DialogReopened(EventPayload):
    """A closed dialog went back to Active."""

    TYPE: ClassVar[str] = "DialogReopened"

    dialog_id: UUID
    actor_id: str
    operator_id: str
    """The responsible operator after reopening."""
    line_id: str | None = None


class MessageDeliveryUpdated(EventPayload):
    """An outbound message's delivery status changed."""

    TYPE: ClassVar[str] = "MessageDeliveryUpdated"

    dialog_id: UUID
    message_id: UUID
    status: DeliveryStatus
    reason: str | None = None
    """Why it failed, e.g. ``not assigned to you`` or the provider's error."""
    provider_message_id: str | None = None


class DialogMessageEdited(EventPayload):
    """A message in the timeline was edited (the dialogs ``MessageEdited``)."""

    TYPE: ClassVar[str] = "MessageEdited"

    dialog_id: UUID
    message_id: UUID
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    actor_id: str | None = None
    """The operator; None when the customer edited (mirrored from inbound)."""
    edited_at: UtcDatetime
    external_message_id: str | None = None


class MessageDeleted(EventPayload):
    TYPE: ClassVar[str] = "MessageDeleted"

    dialog_id: UUID
    message_id: UUID
    actor_id: str | None = None
    """The operator; None when the customer deleted it."""


class DialogRead(EventPayload):
    """An operator read the dialog up to a message."""

    TYPE: ClassVar[str] = "DialogRead"

    dialog_id: UUID
    operator_id: str
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
