"""Telegram Bot API webhooks: the Update subset ingest reads, and its normalisation.

Reference: https://core.telegram.org/bots/api#update. Telegram sends the webhook's
`secret_token` (set with setWebhook) in `X-Telegram-Bot-Api-Secret-Token`.

Every string we map is capped to Telegram's documented limit (or, where Telegram documents
none, to the catalog's bound): an over-long value is truncated, never refused, because a
refused webhook is retried by the provider and a real Telegram update never exceeds them.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from openlines.events import deterministic_event_id
from openlines.events.catalog import (
    Attachment,
    AttachmentKind,
    ButtonPressed,
    ChannelType,
    Customer,
    InboundMessageEdited,
    MessageReceived,
    conversation_key,
)
from openlines.events.limits import ID_MAX, NAME_MAX
from openlines.events.lines import Channel, Line
from openlines.ingest.domain import Accepted, Ignored, InvalidUpdate, Outcome

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Telegram's limits, in characters: names 1-64 (first_name, last_name; usernames are 5-32),
# message text 1-4096 (sendMessage), captions 0-1024 (4096 for Premium senders), chat titles
# 1-128 (setChatTitle). Python counts code points, Telegram UTF-16 units: a text within
# Telegram's limit is never cut.
NAME_LIMIT = 64
TEXT_LIMIT = 4096
TITLE_LIMIT = 128
LANGUAGE_LIMIT = 35  # the longest IETF language tag in common use
CALLBACK_DATA_LIMIT = 64


def _cut(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value[:limit])


TgName = Annotated[str, _cut(NAME_LIMIT)]
TgText = Annotated[str, _cut(TEXT_LIMIT)]
TgTitle = Annotated[str, _cut(TITLE_LIMIT)]
TgLanguage = Annotated[str, _cut(LANGUAGE_LIMIT)]
TgFileName = Annotated[str, _cut(NAME_MAX)]
TgFileId = Annotated[str, _cut(ID_MAX)]


class _Tg(BaseModel):
    # Telegram adds fields over time: read what we need, ignore the rest.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class TgUser(_Tg):
    id: int
    is_bot: bool = False
    first_name: TgName = ""
    last_name: TgName | None = None
    username: TgName | None = None
    language_code: TgLanguage | None = None

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p).strip()
        return name or self.username or str(self.id)


class TgChat(_Tg):
    id: int
    type: str = "private"
    title: TgTitle | None = None
    username: TgName | None = None


class TgFile(_Tg):
    """PhotoSize, Document, Audio, Voice, Video, VideoNote, Animation and Sticker share these."""

    file_id: TgFileId = Field(min_length=1)
    file_unique_id: TgFileId | None = None
    file_size: int = Field(default=0, ge=0)
    file_name: TgFileName | None = None
    mime_type: TgFileName | None = None
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    duration: int | None = Field(default=None, ge=0)


class TgMessageRef(_Tg):
    message_id: int


# Unix seconds that datetime can represent (year 9999): beyond it a date is not Telegram's.
_MAX_UNIX_TIME = 253_402_300_799


class TgMessage(_Tg):
    message_id: int
    date: int = Field(ge=0, le=_MAX_UNIX_TIME)
    chat: TgChat
    from_: TgUser | None = Field(default=None, alias="from")
    edit_date: int | None = Field(default=None, ge=0, le=_MAX_UNIX_TIME)
    text: TgText | None = None
    caption: TgText | None = None
    reply_to_message: TgMessageRef | None = None
    photo: tuple[TgFile, ...] = ()
    document: TgFile | None = None
    animation: TgFile | None = None
    audio: TgFile | None = None
    voice: TgFile | None = None
    video: TgFile | None = None
    video_note: TgFile | None = None
    sticker: TgFile | None = None


class TgCallbackQuery(_Tg):
    """A press of an inline keyboard button under one of the bot's messages. `message` is
    absent for buttons of inline-mode messages (not ours); Telegram's callback_data is 1-64
    bytes."""

    id: TgFileId = Field(min_length=1)
    from_: TgUser | None = Field(default=None, alias="from")
    message: TgMessage | None = None
    chat_instance: TgFileId = ""
    data: Annotated[str, _cut(CALLBACK_DATA_LIMIT)] | None = None


class TgUpdate(_Tg):
    update_id: int
    message: TgMessage | None = None
    edited_message: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None


def update_kind(data: Mapping[str, object]) -> str:
    """The Update's one optional field: `message`, `callback_query`, `my_chat_member`..."""
    return next((key for key in data if key != "update_id"), "empty")


def attachments_of(message: TgMessage) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if message.photo:
        # Telegram sends every size it made; the largest is the original.
        largest = max(message.photo, key=lambda p: ((p.width or 0) * (p.height or 0), p.file_size))
        found.append(_attachment(AttachmentKind.PHOTO, largest))
    # An animation also arrives as `document` (for old clients): keep one of them.
    if message.animation is not None:
        found.append(_attachment(AttachmentKind.VIDEO, message.animation))
    elif message.document is not None:
        found.append(_attachment(AttachmentKind.DOCUMENT, message.document))
    for kind, file in (
        (AttachmentKind.AUDIO, message.audio),
        (AttachmentKind.VOICE, message.voice),
        (AttachmentKind.VIDEO, message.video),
        (AttachmentKind.VIDEO, message.video_note),
        (AttachmentKind.STICKER, message.sticker),
    ):
        if file is not None:
            found.append(_attachment(kind, file))
    return tuple(found)


def _attachment(kind: AttachmentKind, file: TgFile) -> Attachment:
    return Attachment(
        kind=kind,
        file_id=file.file_id,
        file_name=file.file_name,
        mime_type=file.mime_type,
        size_bytes=file.file_size or None,
        width=file.width,
        height=file.height,
        duration_seconds=file.duration,
    )


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class TelegramAdapter:
    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
        # A channel without a secret accepts nothing: anyone could post to it otherwise.
        given = headers.get(SECRET_HEADER)
        if not channel.secret or given is None:
            return False
        # surrogateescape: aiohttp keeps undecodable header bytes that way; they must compare
        # unequal, not raise.
        return hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), channel.secret.encode()
        )

    def normalise(self, data: object, line: Line, channel: Channel) -> Outcome:
        if not isinstance(data, dict):
            raise InvalidUpdate(f"a Telegram Update is a JSON object, not {type(data).__name__}")
        try:
            update = TgUpdate.model_validate(data)
        except ValidationError as exc:
            raise InvalidUpdate(_describe(exc)) from None
        if update.message is not None:
            return self._received(update.message, line, channel)
        if update.edited_message is not None:
            return self._edited(update.edited_message, channel)
        if update.callback_query is not None:
            return self._pressed(update.callback_query, line, channel)
        return Ignored(update_kind(data))

    def _pressed(self, query: TgCallbackQuery, line: Line, channel: Channel) -> Outcome:
        """A button press becomes `ButtonPressed`; the webhook's answer carries Telegram's
        `answerCallbackQuery` (a webhook may answer with one method call), so the customer's
        button stops spinning without another request."""
        if query.message is None or not query.data:
            return Ignored("callback_query")  # an inline-mode message's button: not ours
        chat_id = str(query.message.chat.id)
        sender = query.from_ or TgUser(id=query.message.chat.id)
        pressed_at = datetime.now(UTC)
        payload = ButtonPressed(
            channel_id=channel.id,
            channel_type=ChannelType.TELEGRAM,
            conversation_key=conversation_key(channel.id, chat_id),
            external_chat_id=chat_id,
            external_user_id=str(sender.id),
            customer=Customer(
                name=sender.display_name,
                external_id=str(sender.id),
                username=sender.username,
                language_code=sender.language_code,
            ),
            data=query.data,
            press_id=query.id,
            message_external_id=str(query.message.message_id),
            pressed_at=pressed_at,
            line_id=line.id,
        )
        # Telegram retries a webhook with the same callback_query id: the same event.
        event_id = deterministic_event_id(channel.id, "callback", query.id)
        return Accepted(
            payload=payload,
            event_id=event_id,
            occurred_at=pressed_at,
            webhook_reply={"method": "answerCallbackQuery", "callback_query_id": query.id},
        )

    def _received(self, message: TgMessage, line: Line, channel: Channel) -> Outcome:
        text = message.text if message.text is not None else message.caption
        attachments = attachments_of(message)
        if text is None and not attachments:
            # Service messages (members joined, pinned...) and content we do not map yet.
            return Ignored("message_without_content")
        chat_id = str(message.chat.id)
        sender = message.from_ or TgUser(id=message.chat.id, first_name=message.chat.title or "")
        payload = MessageReceived(
            channel_id=channel.id,
            channel_type=ChannelType.TELEGRAM,
            conversation_key=conversation_key(channel.id, chat_id),
            external_chat_id=chat_id,
            external_user_id=str(sender.id),
            external_message_id=str(message.message_id),
            customer=Customer(
                name=sender.display_name,
                external_id=str(sender.id),
                username=sender.username,
                language_code=sender.language_code,
            ),
            text=text,
            attachments=attachments,
            reply_to_external_id=(
                str(message.reply_to_message.message_id) if message.reply_to_message else None
            ),
            sent_at=_at(message.date),
            line_id=line.id,
        )
        event_id = deterministic_event_id(channel.id, "message", chat_id, str(message.message_id))
        return Accepted(payload=payload, event_id=event_id, occurred_at=payload.sent_at)

    def _edited(self, message: TgMessage, channel: Channel) -> Outcome:
        chat_id = str(message.chat.id)
        edited_at = _at(message.edit_date if message.edit_date is not None else message.date)
        payload = InboundMessageEdited(
            channel_id=channel.id,
            channel_type=ChannelType.TELEGRAM,
            conversation_key=conversation_key(channel.id, chat_id),
            external_message_id=str(message.message_id),
            text=message.text if message.text is not None else message.caption,
            attachments=attachments_of(message),
            edited_at=edited_at,
            external_chat_id=chat_id,
            external_user_id=str(message.from_.id) if message.from_ else None,
        )
        # Each edit is its own event; a retry of the same edit carries the same edit_date.
        event_id = deterministic_event_id(
            channel.id, "edit", chat_id, str(message.message_id), str(message.edit_date or 0)
        )
        return Accepted(payload=payload, event_id=event_id, occurred_at=edited_at)


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5])
