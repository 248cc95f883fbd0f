"""Factories for the events service tests publish as if they were another service.

Every argument has a default that fits the demo lines file (line `demo`, channel `tg-demo`,
chat `42`); a test names only what it is about. Ids are fresh unless given, except where a
real producer derives them: `envelope()` of a `MessageReceived` gets the deterministic event id
a webhook retry would get, so a test can publish the same message twice.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from openlines.events.catalog import (
    AssignedBy,
    ButtonPressed,
    ChannelType,
    CloseReason,
    Customer,
    DeliveryReceiptReceived,
    DeliveryStatus,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    Direction,
    InboundMessageEdited,
    MessageAppended,
    MessageDeliveryUpdated,
    MessageDispatched,
    MessageDispatchFailed,
    MessageReceived,
    ParticipantJoined,
    conversation_key,
)
from openlines.events.envelope import Envelope, EventPayload, deterministic_event_id, utc_now

P = TypeVar("P", bound=EventPayload)

LINE = "demo"
CHANNEL = "tg-demo"
CHAT = "42"

# Provider message ids unique across a test session (tests share one broker).
_external_ids = itertools.count(int(time.time() * 1000))


def channel_type_of(channel_id: str) -> ChannelType:
    """The demo naming convention: `wa-*` channels are WhatsApp, the others Telegram."""
    return ChannelType.WHATSAPP if channel_id.startswith("wa-") else ChannelType.TELEGRAM


# -- what ingest publishes (INBOUND) -----------------------------------------------------------


def message_received(
    chat: str = CHAT,
    text: str | None = "hello",
    *,
    channel_id: str = CHANNEL,
    line_id: str | None = LINE,
    external_message_id: str | None = None,
    name: str | None = None,
    username: str | None = None,
    sent_at: datetime | None = None,
    **fields: Any,
) -> MessageReceived:
    """A customer's message in chat `chat` (the customer's id is the chat's, as in Telegram)."""
    return MessageReceived(
        channel_id=channel_id,
        channel_type=channel_type_of(channel_id),
        conversation_key=conversation_key(channel_id, chat),
        external_chat_id=chat,
        external_user_id=chat,
        external_message_id=external_message_id or str(next(_external_ids)),
        customer=Customer(name=name or f"Customer {chat}", username=username, external_id=chat),
        text=text,
        sent_at=sent_at or utc_now(),
        line_id=line_id,
        **fields,
    )


def message_edited(
    external_message_id: str,
    text: str | None = "edited",
    *,
    chat: str = CHAT,
    channel_id: str = CHANNEL,
    edited_at: datetime | None = None,
    **fields: Any,
) -> InboundMessageEdited:
    """The customer's edit of their message `external_message_id` in chat `chat`."""
    return InboundMessageEdited(
        channel_id=channel_id,
        channel_type=channel_type_of(channel_id),
        conversation_key=conversation_key(channel_id, chat),
        external_message_id=external_message_id,
        text=text,
        edited_at=edited_at or utc_now(),
        **fields,
    )


def button_pressed(
    data: str,
    chat: str = CHAT,
    *,
    channel_id: str = CHANNEL,
    press_id: str | None = None,
    **fields: Any,
) -> ButtonPressed:
    """The customer of chat `chat` pressed a button whose data is `data`."""
    return ButtonPressed(
        channel_id=channel_id,
        channel_type=channel_type_of(channel_id),
        conversation_key=conversation_key(channel_id, chat),
        external_chat_id=chat,
        external_user_id=chat,
        customer=Customer(name=f"Customer {chat}", external_id=chat),
        data=data,
        press_id=press_id or str(next(_external_ids)),
        pressed_at=utc_now(),
        line_id=fields.pop("line_id", LINE),
        **fields,
    )


def received_event_id(message: MessageReceived) -> UUID:
    """The same id for the same provider message, as ingest gives a retried webhook."""
    return deterministic_event_id(
        message.channel_id, message.external_chat_id, message.external_message_id
    )


def delivery_receipt_received(
    provider_message_id: str,
    status: DeliveryStatus = DeliveryStatus.DELIVERED,
    *,
    chat: str = CHAT,
    channel_id: str = CHANNEL,
    at: datetime | None = None,
    **fields: Any,
) -> DeliveryReceiptReceived:
    return DeliveryReceiptReceived(
        channel_id=channel_id,
        channel_type=channel_type_of(channel_id),
        conversation_key=conversation_key(channel_id, chat),
        provider_message_id=provider_message_id,
        status=status,
        at=at or utc_now(),
        **fields,
    )


# -- what dialogs publishes (DIALOGS) ----------------------------------------------------------


def dialog_opened(
    dialog_id: UUID | None = None,
    *,
    chat: str = CHAT,
    channel_id: str = CHANNEL,
    line_id: str = LINE,
    name: str = "Carla",
    title: str | None = None,
    **fields: Any,
) -> DialogOpened:
    return DialogOpened(
        dialog_id=dialog_id or uuid.uuid4(),
        line_id=line_id,
        channel_id=channel_id,
        channel_type=channel_type_of(channel_id),
        conversation_key=conversation_key(channel_id, chat),
        customer=Customer(name=name, external_id=chat),
        external_user_id=chat,
        title=title or name,
        **fields,
    )


def dialog_assigned(
    dialog_id: UUID,
    operator_id: str,
    *,
    by: AssignedBy = AssignedBy.ROUTING,
    line_id: str = LINE,
    actor_id: str | None = None,
    strategy: str | None = None,
    previous_operator_id: str | None = None,
) -> DialogAssigned:
    return DialogAssigned(
        dialog_id=dialog_id,
        operator_id=operator_id,
        assigned_by=by,
        actor_id=actor_id,
        strategy=strategy,
        previous_operator_id=previous_operator_id,
        line_id=line_id,
    )


def dialog_closed(
    dialog_id: UUID,
    operator_id: str | None = None,
    *,
    line_id: str = LINE,
    reason: CloseReason = CloseReason.OPERATOR,
    actor_id: str | None = None,
) -> DialogClosed:
    return DialogClosed(
        dialog_id=dialog_id,
        reason=reason,
        actor_id=actor_id,
        line_id=line_id,
        operator_id=operator_id,
    )


def message_appended(
    dialog_id: UUID,
    text: str | None = "hello",
    *,
    direction: Direction = Direction.IN,
    chat: str = CHAT,
    channel_id: str = CHANNEL,
    message_id: UUID | None = None,
    sent_at: datetime | None = None,
    **fields: Any,
) -> MessageAppended:
    return MessageAppended(
        dialog_id=dialog_id,
        message_id=message_id or uuid.uuid4(),
        direction=direction,
        text=text,
        channel_id=channel_id,
        conversation_key=conversation_key(channel_id, chat),
        sent_at=sent_at or utc_now(),
        **fields,
    )


def message_delivery_updated(
    dialog_id: UUID, message_id: UUID, status: DeliveryStatus, **fields: Any
) -> MessageDeliveryUpdated:
    return MessageDeliveryUpdated(
        dialog_id=dialog_id, message_id=message_id, status=status, **fields
    )


def participant_joined(dialog_id: UUID, operator_id: str, actor_id: str) -> ParticipantJoined:
    return ParticipantJoined(dialog_id=dialog_id, operator_id=operator_id, actor_id=actor_id)


# -- what outbound publishes (OUTBOUND) --------------------------------------------------------


def message_dispatched(
    dialog_id: UUID,
    message_id: UUID,
    provider_message_id: str,
    *,
    channel_id: str = CHANNEL,
    attempts: int = 1,
) -> MessageDispatched:
    return MessageDispatched(
        dialog_id=dialog_id,
        message_id=message_id,
        channel_id=channel_id,
        provider_message_id=provider_message_id,
        attempts=attempts,
    )


def message_dispatch_failed(
    dialog_id: UUID,
    message_id: UUID,
    reason: str = "provider refused",
    *,
    channel_id: str = CHANNEL,
    attempts: int = 1,
    retryable: bool = False,
) -> MessageDispatchFailed:
    return MessageDispatchFailed(
        dialog_id=dialog_id,
        message_id=message_id,
        channel_id=channel_id,
        reason=reason,
        attempts=attempts,
        retryable=retryable,
    )


# -- envelopes ---------------------------------------------------------------------------------


def envelope(
    payload: P,
    *,
    stream_id: str | None = None,
    stream_version: int = 1,
    producer: str = "test",
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[P]:
    """`payload` in an envelope on its natural stream: the dialog for dialog events, the
    conversation for inbound ones."""
    if event_id is None and isinstance(payload, MessageReceived):
        event_id = received_event_id(payload)
    return Envelope.new(
        payload,
        stream_id=stream_id or _natural_stream(payload),
        stream_version=stream_version,
        producer=producer,
        event_id=event_id,
        occurred_at=occurred_at,
    )


def _natural_stream(payload: EventPayload) -> str:
    for attribute in ("dialog_id", "conversation_key"):
        if (value := getattr(payload, attribute, None)) is not None:
            return str(value)
    raise ValueError(f"name the stream of a {type(payload).__name__}")


class DialogStream:
    """Envelopes of dialog events with per-dialog consecutive stream versions (1, 2, ...),
    as the dialogs relay publishes them."""

    def __init__(self, producer: str = "dialogs") -> None:
        self.producer = producer
        self.versions: dict[str, int] = {}

    def envelope(self, payload: P, *, occurred_at: datetime | None = None) -> Envelope[P]:
        stream_id = _natural_stream(payload)
        self.versions[stream_id] = self.versions.get(stream_id, 0) + 1
        return envelope(
            payload,
            stream_id=stream_id,
            stream_version=self.versions[stream_id],
            producer=self.producer,
            occurred_at=occurred_at,
        )
