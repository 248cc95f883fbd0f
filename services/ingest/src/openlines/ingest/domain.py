"""The pure core of ingest: what a provider webhook becomes.

Each channel type has an adapter that checks a webhook's signature and turns the provider's
payload into one inbound event, or says which kind of update it ignores; a provider that
batches (WhatsApp: several entries, messages and statuses in one body) answers a `Batch` of
those. Adapters do no I/O:
the HTTP edge (api.py) reads the request, calls them and publishes the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from openlines.events.catalog import (
    ButtonPressed,
    DeliveryReceiptReceived,
    InboundMessageEdited,
    MessageReceived,
)
from openlines.events.lines import Channel, Line

InboundPayload = MessageReceived | InboundMessageEdited | DeliveryReceiptReceived | ButtonPressed


@dataclass(frozen=True)
class Accepted:
    """An update that becomes one event on the inbound topic."""

    payload: InboundPayload
    event_id: UUID
    """Deterministic from the provider's ids: a provider retry yields the same id."""
    occurred_at: datetime
    webhook_reply: Mapping[str, str] | None = None
    """Added to the webhook's 200 answer: a provider that reads the answer (Telegram: one
    Bot API method call, e.g. answerCallbackQuery) acts on it."""

    @property
    def conversation_key(self) -> str:
        return self.payload.conversation_key


@dataclass(frozen=True)
class Ignored:
    """A well-formed update that carries nothing for the dialogs (e.g. ``my_chat_member``).

    Acknowledged with 200 so that the provider stops retrying it.
    """

    kind: str


@dataclass(frozen=True)
class Batch:
    """One webhook body that carries several updates: each becomes its event (or is ignored),
    and the webhook is answered once all of its events are on the broker."""

    outcomes: tuple[Accepted | Ignored, ...]

    @property
    def accepted(self) -> tuple[Accepted, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Accepted))

    @property
    def ignored(self) -> tuple[Ignored, ...]:
        return tuple(o for o in self.outcomes if isinstance(o, Ignored))


Outcome = Accepted | Ignored | Batch


class InvalidUpdate(ValueError):
    """Valid JSON, but not the payload this provider sends."""


class ChannelAdapter(Protocol):
    """Verification and normalisation for one channel type (telegram, whatsapp, widget...)."""

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the webhook really comes from the provider of `channel`."""
        ...

    def normalise(self, data: object, line: Line, channel: Channel) -> Outcome:
        """The event (or events) for a parsed webhook body; raises InvalidUpdate."""
        ...
