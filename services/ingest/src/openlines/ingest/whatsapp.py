"""WhatsApp Cloud API webhooks: the handshake, the signature, and the `entry[].changes[].value`
subset ingest reads.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components. Meta
signs each POST with the app secret (`X-Hub-Signature-256: sha256=<hex HMAC of the raw body>`)
and checks the callback URL first with a GET carrying `hub.mode=subscribe`,
`hub.verify_token` and `hub.challenge`, which must be echoed as text.

One body may carry several entries, each several changes, each several messages and statuses:
every one becomes its own event (a `Batch`). Messages become `MessageReceived`; `delivered`,
`read` and `failed` statuses `DeliveryReceiptReceived`; `sent` is already known from outbound's
`MessageDispatched`, so it is acknowledged and ignored. Inbound media stay metadata (the media
id is the attachment's `file_id`), as Telegram's do. Strings are capped to the provider's limits
like Telegram's; ids that could not be a provider's (too long, control characters) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from openlines.events import deterministic_event_id
from openlines.events.catalog import (
    Attachment,
    AttachmentKind,
    ChannelType,
    Customer,
    DeliveryReceiptReceived,
    DeliveryStatus,
    MessageReceived,
    conversation_key,
)
from openlines.events.limits import NAME_MAX, REASON_MAX
from openlines.events.lines import Channel, Line
from openlines.ingest.domain import Accepted, Batch, Ignored, InvalidUpdate, Outcome

SIGNATURE_HEADER = "X-Hub-Signature-256"

TEXT_LIMIT = 4096  # a text message's body
CAPTION_LIMIT = 1024


def _cut(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value[:limit])


WaText = Annotated[str, _cut(TEXT_LIMIT)]
WaCaption = Annotated[str, _cut(CAPTION_LIMIT)]
WaName = Annotated[str, _cut(NAME_MAX)]
# A wamid or media id: printable, bounded (real ones are ~60 characters). A control character
# would also break the deterministic event id's separator.
WaId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
# A WhatsApp user id is a phone number in digits.
WaUser = Annotated[str, Field(pattern=r"^[0-9]{1,32}$")]
# Unix seconds as a string, up to year 9999.
WaTimestamp = Annotated[str, Field(pattern=r"^[0-9]{1,11}$")]
_MAX_UNIX_TIME = 253_402_300_799


class _Wa(BaseModel):
    # Meta adds fields over time: read what we need, ignore the rest.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class WaProfile(_Wa):
    name: WaName = ""


class WaContact(_Wa):
    wa_id: WaUser
    profile: WaProfile = WaProfile()


class WaTextBody(_Wa):
    body: WaText


class WaMedia(_Wa):
    """image, document, audio, video and sticker share these."""

    id: WaId
    mime_type: WaName | None = None
    sha256: WaName | None = None
    caption: WaCaption | None = None
    filename: WaName | None = None
    voice: bool = False


class WaLocation(_Wa):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: WaName | None = None
    address: WaName | None = None


class WaReply(_Wa):
    id: WaName = ""
    title: WaName = ""


class WaInteractive(_Wa):
    type: WaName = ""
    button_reply: WaReply | None = None
    list_reply: WaReply | None = None


class WaButton(_Wa):
    """A template's quick-reply button the customer pressed."""

    text: WaName = ""
    payload: WaName | None = None


class WaContext(_Wa):
    id: WaId | None = None


class WaMessage(_Wa):
    from_: WaUser = Field(alias="from")
    id: WaId
    timestamp: WaTimestamp
    type: WaName = "text"
    text: WaTextBody | None = None
    image: WaMedia | None = None
    document: WaMedia | None = None
    audio: WaMedia | None = None
    video: WaMedia | None = None
    sticker: WaMedia | None = None
    location: WaLocation | None = None
    interactive: WaInteractive | None = None
    button: WaButton | None = None
    context: WaContext | None = None


class WaError(_Wa):
    code: int | None = None
    title: Annotated[str, _cut(REASON_MAX)] = ""


class WaStatus(_Wa):
    id: WaId
    status: WaName
    timestamp: WaTimestamp
    recipient_id: WaUser
    errors: tuple[WaError, ...] = ()


class WaMetadata(_Wa):
    phone_number_id: WaName = ""
    display_phone_number: WaName | None = None


class WaValue(_Wa):
    messaging_product: WaName = "whatsapp"
    metadata: WaMetadata = WaMetadata()
    contacts: tuple[WaContact, ...] = ()
    messages: tuple[WaMessage, ...] = ()
    statuses: tuple[WaStatus, ...] = ()


class WaChange(_Wa):
    field: WaName = ""
    value: WaValue = WaValue()


class WaEntry(_Wa):
    id: WaName = ""
    changes: tuple[WaChange, ...] = ()


class WaNotification(_Wa):
    """The body of a WhatsApp Cloud API webhook."""

    object: Literal["whatsapp_business_account"]
    entry: tuple[WaEntry, ...] = Field(min_length=1)


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body` (and the sandbox, and tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _at(timestamp: str) -> datetime:
    seconds = int(timestamp)
    if seconds > _MAX_UNIX_TIME:
        raise InvalidUpdate("timestamp out of range")
    return datetime.fromtimestamp(seconds, UTC)


_MEDIA_KINDS = {
    "image": AttachmentKind.PHOTO,
    "document": AttachmentKind.DOCUMENT,
    "video": AttachmentKind.VIDEO,
    "sticker": AttachmentKind.STICKER,
}


def attachments_of(message: WaMessage) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for name, kind in _MEDIA_KINDS.items():
        media: WaMedia | None = getattr(message, name)
        if media is not None:
            found.append(_attachment(kind, media))
    if message.audio is not None:
        kind = AttachmentKind.VOICE if message.audio.voice else AttachmentKind.AUDIO
        found.append(_attachment(kind, message.audio))
    return tuple(found)


def _attachment(kind: AttachmentKind, media: WaMedia) -> Attachment:
    return Attachment(
        kind=kind, file_id=media.id, file_name=media.filename, mime_type=media.mime_type
    )


def text_of(message: WaMessage) -> str | None:
    """What the customer wrote, said or chose, as the timeline shows it."""
    if message.text is not None:
        return message.text.body
    for media in (message.image, message.document, message.video, message.audio):
        if media is not None and media.caption:
            return media.caption
    if message.location is not None:
        place = message.location
        label = ", ".join(p for p in (place.name, place.address) if p)
        where = f"{place.latitude:.6f},{place.longitude:.6f}"
        return f"📍 {label} ({where})" if label else f"📍 {where}"
    if message.interactive is not None:
        choice = message.interactive.button_reply or message.interactive.list_reply
        if choice is not None:
            return choice.title or choice.id or None
    if message.button is not None:
        return message.button.text or message.button.payload or None
    return None


class WhatsAppAdapter:
    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
        # A channel without an app secret accepts nothing: anyone could post to it otherwise.
        given = headers.get(SIGNATURE_HEADER)
        if not channel.secret or given is None:
            return False
        # surrogateescape: undecodable header bytes must compare unequal, not raise.
        return hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), signature(channel.secret, body).encode()
        )

    def handshake(self, channel: Channel, query: Mapping[str, str]) -> str | None:
        expected = channel.whatsapp.verify_token if channel.whatsapp else ""
        given = query.get("hub.verify_token")
        if not expected or given is None or query.get("hub.mode") != "subscribe":
            return None
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
            return None
        return query.get("hub.challenge", "")

    def normalise(self, data: object, line: Line, channel: Channel) -> Outcome:
        if not isinstance(data, dict):
            raise InvalidUpdate(f"a WhatsApp webhook is a JSON object, not {type(data).__name__}")
        try:
            notification = WaNotification.model_validate(data)
        except ValidationError as exc:
            raise InvalidUpdate(_describe(exc)) from None
        outcomes: list[Accepted | Ignored] = []
        for entry in notification.entry:
            for change in entry.changes:
                outcomes += self._change(change, line, channel)
        if not outcomes:
            return Ignored("no_messages")
        return Batch(tuple(outcomes))

    def _change(self, change: WaChange, line: Line, channel: Channel) -> list[Accepted | Ignored]:
        if change.field != "messages":
            return [Ignored(f"field_{change.field or 'empty'}")]
        value = change.value
        own = channel.whatsapp.phone_number_id if channel.whatsapp else None
        if value.metadata.phone_number_id and value.metadata.phone_number_id != own:
            # One Meta app may serve several numbers: this one is another channel's.
            return [Ignored("other_phone_number")]
        names = {c.wa_id: c.profile.name for c in value.contacts}
        found: list[Accepted | Ignored] = [
            self._received(m, names.get(m.from_, ""), line, channel) for m in value.messages
        ]
        found += [self._status(s, channel) for s in value.statuses]
        return found

    def _received(
        self, message: WaMessage, name: str, line: Line, channel: Channel
    ) -> Accepted | Ignored:
        text = text_of(message)
        attachments = attachments_of(message)
        if text is None and not attachments:
            # reactions, unsupported, system messages...
            return Ignored(f"message_{message.type[:32]}")
        sent_at = _at(message.timestamp)
        wa_id = message.from_
        payload = MessageReceived(
            channel_id=channel.id,
            channel_type=ChannelType.WHATSAPP,
            conversation_key=conversation_key(channel.id, wa_id),
            external_chat_id=wa_id,
            external_user_id=wa_id,
            external_message_id=message.id,
            customer=Customer(name=name or f"+{wa_id}", external_id=wa_id, phone=f"+{wa_id}"),
            text=text,
            attachments=attachments,
            reply_to_external_id=message.context.id if message.context else None,
            sent_at=sent_at,
            line_id=line.id,
        )
        event_id = deterministic_event_id(channel.id, "message", message.id)
        return Accepted(payload=payload, event_id=event_id, occurred_at=sent_at)

    def _status(self, status: WaStatus, channel: Channel) -> Accepted | Ignored:
        mapped = _STATUSES.get(status.status)
        if mapped is None:
            # `sent` (outbound's MessageDispatched said so already), `deleted`, `warning`...
            return Ignored(f"status_{status.status[:32]}")
        at = _at(status.timestamp)
        reason = None
        if mapped is DeliveryStatus.FAILED:
            reason = "; ".join(f"{e.code}: {e.title}" for e in status.errors)[:REASON_MAX] or (
                "failed"
            )
        payload = DeliveryReceiptReceived(
            channel_id=channel.id,
            channel_type=ChannelType.WHATSAPP,
            conversation_key=conversation_key(channel.id, status.recipient_id),
            provider_message_id=status.id,
            status=mapped,
            reason=reason,
            at=at,
        )
        event_id = deterministic_event_id(channel.id, "status", status.id, status.status)
        return Accepted(payload=payload, event_id=event_id, occurred_at=at)


_STATUSES: dict[
    str, Literal[DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED]
] = {
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5])
