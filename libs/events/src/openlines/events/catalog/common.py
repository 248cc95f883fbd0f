"""Closed sets and value objects shared by the catalog."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openlines.events.limits import Id, Name, Url

__all__ = [
    "OPEN_STATUSES",
    "AssignedBy",
    "Attachment",
    "AttachmentKind",
    "Button",
    "ChannelType",
    "CloseReason",
    "Customer",
    "DeliveryStatus",
    "DialogStatus",
    "Direction",
    "MessageChange",
    "MessageTemplate",
    "PresenceStatus",
    "SlaMetric",
    "conversation_key",
]


class ChannelType(StrEnum):
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    VIBER = "viber"
    WIDGET = "widget"
    EMAIL = "email"


class Direction(StrEnum):
    IN = "in"
    """From the customer."""
    OUT = "out"
    """From an operator to the customer."""
    NOTE = "note"
    """Staff-only note; hidden from the customer."""
    SYSTEM = "system"
    """Staff-only system message (assignment, close, CRM link...)."""


class DialogStatus(StrEnum):
    """Where a dialog stands: the `status` of the API's dialog JSON, the tabs' filter, and
    what the access policy and notify's views follow from the events."""

    UNASSIGNED = "unassigned"
    ACTIVE = "active"
    CLOSED = "closed"
    SPAM = "spam"


OPEN_STATUSES = frozenset({DialogStatus.UNASSIGNED, DialogStatus.ACTIVE})


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class CloseReason(StrEnum):
    OPERATOR = "operator"
    AUTO_INACTIVE = "auto_inactive"
    AUTO_UNASSIGNED = "auto_unassigned"
    SPAM = "spam"


class AssignedBy(StrEnum):
    ROUTING = "routing"
    OPERATOR = "operator"
    """The operator took the dialog (Reply/Take/Take over)."""
    SUPERVISOR = "supervisor"


class MessageChange(StrEnum):
    """A change to a message the provider already has (outbound's edit and delete)."""

    EDIT = "edit"
    DELETE = "delete"


class PresenceStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class SlaMetric(StrEnum):
    RESPONSE = "response"
    """Since the customer's last unanswered message (the RetailCRM marker)."""
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class AttachmentKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"
    VOICE = "voice"
    STICKER = "sticker"
    OTHER = "other"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)


class Attachment(_Value):
    """File metadata only; the bytes stay with the provider (or object storage)."""

    kind: AttachmentKind
    file_id: Id
    """Provider file id (or storage key); enough to fetch or re-send the file."""
    file_name: Name | None = None
    mime_type: Name | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    duration_seconds: int | None = Field(default=None, ge=0)
    """Audio, video and voice only."""
    url: Url | None = None
    """Download URL when the provider gives one; it may expire."""


# WhatsApp caps a template's whole body at 1024 characters: a few short values fill it.
TEMPLATE_VARIABLES_MAX = 16


class MessageTemplate(_Value):
    """A template the provider approved beforehand (WhatsApp's), sent instead of free text
    where the provider allows nothing else (outside WhatsApp's 24-hour customer-service
    window); the message's `text` is the template filled in, as the customer reads it."""

    name: Name
    language: Name
    variables: tuple[Name, ...] = Field(default=(), max_length=TEMPLATE_VARIABLES_MAX)
    """The values of its numbered placeholders `{{1}}`, `{{2}}`..., in order."""


class Button(_Value):
    """A button under a message to the customer (Telegram: an inline keyboard button). The
    customer's press comes back as ``ButtonPressed`` with ``data``."""

    text: Name
    """What the button shows."""
    data: Annotated[str, Field(min_length=1, max_length=64)]
    """What a press sends back (Telegram's callback_data: 1-64 bytes; ASCII here)."""


class Customer(_Value):
    """The customer as the channel knows them."""

    name: Name
    external_id: Id
    """The customer's id in the channel (e.g. Telegram user id)."""
    username: Name | None = None
    phone: Name | None = None
    email: Name | None = None
    language_code: Name | None = None


def conversation_key(channel_id: str, external_chat_id: str) -> str:
    """Key of ``openlines.inbound.v1``: one conversation of one channel."""
    return f"{channel_id}:{external_chat_id}"
