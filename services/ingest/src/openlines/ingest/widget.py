"""The website widget's server-to-server webhook: the project's own JSON, HMAC-signed.

`POST /webhooks/widget/{channel_id}` with

    X-Openlines-Timestamp: <Unix seconds>
    X-Openlines-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is inside the HMAC (as Stripe and Slack sign theirs): a captured request cannot
be re-dated, so it is refused once it is more than five minutes away from our clock, and within
those five minutes a replay carries the same body, so the same deterministic event id, which
every consumer dedupes. A sender that wants two identical messages counted twice (or its own
retries deduped across re-signing) gives each message a `message_id`.

The browser never signs anything: it talks to the visitor endpoints (`visitor.py`) with a
visitor token instead. This webhook is for a site's own backend (a chat bot, a contact form).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from openlines.events import deterministic_event_id
from openlines.events.catalog import (
    Attachment,
    AttachmentKind,
    ChannelType,
    Customer,
    MessageReceived,
    conversation_key,
)
from openlines.events.limits import ID_MAX, NAME_MAX, TEXT_MAX, URL_MAX
from openlines.events.lines import Channel, Line
from openlines.ingest.domain import Accepted, InvalidUpdate, Outcome
from openlines.kit.visitor import VISITOR_ID

SIGNATURE_HEADER = "X-Openlines-Signature"
TIMESTAMP_HEADER = "X-Openlines-Timestamp"
WINDOW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Openlines-Signature` value of `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Both headers for `body`: what a site's backend (and `openlines say`) sends."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def _cut(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value[:limit])


VisitorId = Annotated[str, StringConstraints(pattern=VISITOR_ID.pattern)]
Name = Annotated[str, _cut(NAME_MAX)]
Url = Annotated[str, StringConstraints(max_length=URL_MAX)]


class WidgetAttachment(BaseModel):
    """Metadata only for now: the file stays where `url` points."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: Url = Field(min_length=1)
    name: Name | None = None
    mime_type: Name | None = None
    size: int | None = Field(default=None, ge=0)
    kind: AttachmentKind = AttachmentKind.DOCUMENT


class WidgetMessage(BaseModel):
    """The body of `POST /webhooks/widget/{channel_id}`: one visitor message."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    visitor_id: VisitorId
    """The site's id for the visitor: one conversation per visitor and channel."""
    name: Name | None = None
    email: Name | None = None
    text: Annotated[str, StringConstraints(max_length=TEXT_MAX)] | None = None
    attachments: tuple[WidgetAttachment, ...] = Field(default=(), max_length=10)
    page_url: Url | None = None
    """Where the visitor wrote from (kept in the logs, not in the event)."""
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX)] | None = None
    """Optional: the sender's id for the message, for idempotent retries."""


class WidgetAdapter:
    """`ChannelAdapter` of type widget. `clock` is injected: the window test moves it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not channel.secret or given is None or timestamp is None:
            return False
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        if abs(self.clock() - int(timestamp)) > WINDOW_SECONDS:
            return False
        expected = signature(channel.secret, timestamp, body)
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())

    def normalise(self, data: object, line: Line, channel: Channel) -> Outcome:
        if not isinstance(data, dict):
            raise InvalidUpdate(f"a widget message is a JSON object, not {type(data).__name__}")
        try:
            message = WidgetMessage.model_validate(data)
        except ValidationError as exc:
            raise InvalidUpdate(_describe(exc)) from None
        return received(message, line, channel, sent_at=datetime.fromtimestamp(self.clock(), UTC))


def received(message: WidgetMessage, line: Line, channel: Channel, *, sent_at: datetime) -> Outcome:
    """The MessageReceived of a visitor's message (the webhook's and the visitor endpoint's)."""
    text = message.text if message.text and message.text.strip() else None
    if text is None and not message.attachments:
        raise InvalidUpdate("a message needs text or attachments")
    if text is not None and len(text) > channel.max_text_length:
        raise InvalidUpdate(f"text: longer than the channel's {channel.max_text_length}")
    visitor = message.visitor_id
    if message.message_id is not None:
        external_id = message.message_id
        event_id = deterministic_event_id(channel.id, "widget", visitor, message.message_id)
    else:
        # Without the sender's id, the content is the identity: a replay is the same event.
        digest = hashlib.sha256(message.model_dump_json().encode()).hexdigest()
        external_id = "w-" + digest[:32]
        event_id = deterministic_event_id(channel.id, "widget", visitor, digest)
    payload = MessageReceived(
        channel_id=channel.id,
        channel_type=ChannelType.WIDGET,
        conversation_key=conversation_key(channel.id, visitor),
        external_chat_id=visitor,
        external_user_id=visitor,
        external_message_id=external_id,
        customer=Customer(
            name=message.name or message.email or "Website visitor",
            external_id=visitor,
            email=message.email,
        ),
        text=text,
        attachments=tuple(_attachment(a) for a in message.attachments),
        sent_at=sent_at,
        line_id=line.id,
    )
    return Accepted(payload=payload, event_id=event_id, occurred_at=sent_at)


def _attachment(item: WidgetAttachment) -> Attachment:
    return Attachment(
        kind=item.kind,
        file_id=item.url[:ID_MAX],
        file_name=item.name,
        mime_type=item.mime_type,
        size_bytes=item.size,
        url=item.url if len(item.url) <= URL_MAX else None,
    )


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5])
