"""``openlines.outbound.v1``: results of sending operator messages, keyed by dialog id."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from openlines.events.catalog.common import MessageChange
from openlines.events.envelope import EventPayload
from openlines.events.limits import Id, Reason

__all__ = ["MessageDispatchFailed", "MessageDispatched"]


class MessageDispatched(EventPayload):
    """The provider accepted the message."""

    TYPE: ClassVar[str] = "MessageDispatched"

    dialog_id: UUID
    message_id: UUID
    channel_id: Id
    provider_message_id: Id
    """Matches ``DeliveryReceiptReceived.provider_message_id`` later."""
    attempts: int = Field(ge=1)
    change: MessageChange | None = None
    """Set when this is not the message's send but an operator's edit or deletion of it,
    applied at the provider (``message_id`` is the changed message)."""


class MessageDispatchFailed(EventPayload):
    """Sending failed; ``retryable`` False means outbound gave up."""

    TYPE: ClassVar[str] = "MessageDispatchFailed"

    dialog_id: UUID
    message_id: UUID
    channel_id: Id
    reason: Reason
    attempts: int = Field(ge=1)
    retryable: bool
    change: MessageChange | None = None
    """Set when the provider refused an operator's edit or deletion of the message (which
    itself was sent): the customer still sees it as it was."""
