"""``openlines.inbound.v1``: normalised provider webhooks, keyed by conversation key.

Written by ingest, which is stateless: these are notifications (``stream_version`` 0) and their
event ids are deterministic from the channel and the provider's ids.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from openlines.events.catalog.common import Attachment, ChannelType, Customer, DeliveryStatus
from openlines.events.envelope import EventPayload, UtcDatetime
from openlines.events.limits import ATTACHMENTS_MAX, Id, Name, Reason, Text

__all__ = ["ButtonPressed", "DeliveryReceiptReceived", "InboundMessageEdited", "MessageReceived"]


class MessageReceived(EventPayload):
    """A customer wrote to a channel."""

    TYPE: ClassVar[str] = "MessageReceived"

    channel_id: Id
    """Channel id from the lines config, e.g. ``tg-sales``."""
    channel_type: ChannelType
    conversation_key: Id
    """``channel_id:external_chat_id``; the Kafka key."""
    external_chat_id: Id
    external_user_id: Id
    external_message_id: Id
    customer: Customer
    text: Text | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=ATTACHMENTS_MAX)
    reply_to_external_id: Id | None = None
    """Provider id of the message this one replies to."""
    sent_at: UtcDatetime
    """When the provider says the customer sent it."""
    line_id: Id | None = None
    """The line of the channel, when ingest knows it."""
    subject: Name | None = None
    """E-mail only: the mail's Subject (an operator's reply answers `Re: <subject>`)."""


class InboundMessageEdited(EventPayload):
    """The customer edited a message they had sent (the inbound ``MessageEdited``)."""

    TYPE: ClassVar[str] = "MessageEdited"

    channel_id: Id
    channel_type: ChannelType
    conversation_key: Id
    external_message_id: Id
    text: Text | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=ATTACHMENTS_MAX)
    edited_at: UtcDatetime
    external_chat_id: Id | None = None
    external_user_id: Id | None = None


class DeliveryReceiptReceived(EventPayload):
    """The provider reported the fate of a message we sent."""

    TYPE: ClassVar[str] = "DeliveryReceiptReceived"

    channel_id: Id
    channel_type: ChannelType
    conversation_key: Id
    provider_message_id: Id
    """The id the provider gave our outbound message (see ``MessageDispatched``)."""
    status: Literal[DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED]
    reason: Reason | None = None
    """Provider's error text for ``failed``."""
    at: UtcDatetime
    """When the provider says it happened."""


class ButtonPressed(EventPayload):
    """The customer pressed a button we sent under a message (Telegram: a ``callback_query``).

    ``data`` is the button's data as we sent it; its prefix says what it answers (``csat:``:
    a rating request). Anyone may forge a press of a button that was never sent, so a
    consumer checks that what ``data`` names belongs to this conversation."""

    TYPE: ClassVar[str] = "ButtonPressed"

    channel_id: Id
    channel_type: ChannelType
    conversation_key: Id
    external_chat_id: Id
    external_user_id: Id
    customer: Customer
    data: Id
    press_id: Id
    """The provider's id of this press (Telegram's callback_query id)."""
    message_external_id: Id | None = None
    """Provider id of the message the button was under."""
    pressed_at: UtcDatetime
    line_id: Id | None = None
