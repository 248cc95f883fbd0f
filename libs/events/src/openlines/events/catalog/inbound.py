"""``openlines.inbound.v1``: normalised provider webhooks, keyed by conversation key.

Written by ingest, which is stateless: these are notifications (``stream_version`` 0) and their
event ids are deterministic from the channel and the provider's ids.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from openlines.events.catalog.common import Attachment, ChannelType, Customer, DeliveryStatus
from openlines.events.envelope import EventPayload, UtcDatetime

__all__ = ["DeliveryReceiptReceived", "InboundMessageEdited", "MessageReceived"]


class MessageReceived(EventPayload):
    """A customer wrote to a channel."""

    TYPE: ClassVar[str] = "MessageReceived"

    channel_id: str
    """Channel id from the lines config, e.g. ``tg-sales``."""
    channel_type: ChannelType
    conversation_key: str
    """``channel_id:external_chat_id``; the Kafka key."""
    external_chat_id: str
    external_user_id: str
    external_message_id: str
    customer: Customer
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_external_id: str | None = None
    """Provider id of the message this one replies to."""
    sent_at: UtcDatetime
    """When the provider says the customer sent it."""
    line_id: str | None = None
    """The line of the channel, when ingest knows it."""


class InboundMessageEdited(EventPayload):
    """The customer edited a message they had sent (the inbound ``MessageEdited``)."""

    TYPE: ClassVar[str] = "MessageEdited"

    channel_id: str
    channel_type: ChannelType
    conversation_key: str
    external_message_id: str
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    edited_at: UtcDatetime
    external_chat_id: str | None = None
    external_user_id: str | None = None


class DeliveryReceiptReceived(EventPayload):
    """The provider reported the fate of a message we sent."""

    TYPE: ClassVar[str] = "DeliveryReceiptReceived"

    channel_id: str
    channel_type: ChannelType
    conversation_key: str
    provider_message_id: str
    """The id the provider gave our outbound message (see ``MessageDispatched``)."""
    status: Literal[DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED]
    reason: str | None = None
    """Provider's error text for ``failed``."""
    at: UtcDatetime
    """When the provider says it happened."""
