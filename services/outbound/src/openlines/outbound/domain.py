"""Outbound decisions, free of I/O: which messages to send, what the provider's answer means,
when to retry, and how fast a channel may be called.

Each channel type has a `Provider` (the outbound side of ingest's `ChannelAdapter`) that sends
an operator's text, edits or deletes it later, and says what came of it; the sender picks it by
the channel's type. An edit or deletion is a job like a send (`SendJob.change`), queued behind
the send of its message.
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from uuid import UUID

from openlines.events.catalog import (
    Button,
    ChannelType,
    DeliveryStatus,
    Direction,
    MessageAppended,
    MessageChange,
    MessageTemplate,
)
from openlines.events.lines import Channel
from openlines.kit.backoff import RetryPolicy as RetryPolicy  # shared with notify's webhooks

if TYPE_CHECKING:
    import aiohttp

# Failure reasons decided before any provider call.
UNKNOWN_CHANNEL = "unknown_channel"
UNSUPPORTED_CHANNEL_TYPE = "unsupported_channel_type"
INVALID_CONVERSATION_KEY = "invalid_conversation_key"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LONG = "text_too_long"
# The provider may or may not have the message, so it is never sent again (the operator may
# post it anew). After a call: the request left and no readable answer came back (a read
# timeout, a dropped connection, an unreadable 2xx). After a crash: a job found in `sending`
# when its lease ran out.
OUTCOME_UNKNOWN = "outcome_unknown"
OUTCOME_UNKNOWN_AFTER_RESTART = "outcome_unknown_after_restart"
# An edit or deletion of a message the provider has no id for: its send failed, or its
# outcome is unknown (the customer may have it, but it cannot be named to the provider).
NOT_SENT = "message_not_sent"
# A provider template for a channel type that has none (only WhatsApp's have).
TEMPLATES_NOT_SUPPORTED = "templates_not_supported"


@dataclass(frozen=True)
class SendJob:
    """One operator reply to deliver, as recorded from its MessageAppended."""

    message_id: UUID
    dialog_id: UUID
    channel_id: str
    conversation_key: str
    chat_id: str | None
    text: str | None
    reply_to: UUID | None
    source_event_id: UUID
    correlation_id: UUID | None
    change: MessageChange | None = None
    """Set for an edit or deletion of `target_message_id` (`text`: the new text); None for
    the send of the message itself."""
    target_message_id: UUID | None = None
    template: MessageTemplate | None = None
    """Send as this approved template (WhatsApp); `text` is it filled in."""
    buttons: tuple[Button, ...] = ()
    """Buttons under the message (a send only), as its MessageAppended carries them."""


def change_job_id(event_id: UUID) -> UUID:
    """The job of an edit or deletion (one per event: a redelivery finds it recorded)."""
    return uuid.uuid5(event_id, "change-job")


def chat_id_of(conversation_key: str, channel_id: str) -> str | None:
    """The external chat id in `channel_id:external_chat_id`, or None if the key is not one."""
    prefix = f"{channel_id}:"
    if not conversation_key.startswith(prefix) or len(conversation_key) == len(prefix):
        return None
    return conversation_key[len(prefix) :]


def send_job_for(
    message: MessageAppended, *, event_id: UUID, correlation_id: UUID | None
) -> SendJob | None:
    """The job for an operator reply; None for customer messages, notes and system messages,
    and for outgoing messages recorded as already sent (e.g. mirrored from elsewhere)."""
    if message.direction is not Direction.OUT:
        return None
    if message.status not in (None, DeliveryStatus.QUEUED):
        return None
    return SendJob(
        message_id=message.message_id,
        dialog_id=message.dialog_id,
        channel_id=message.channel_id,
        conversation_key=message.conversation_key,
        chat_id=chat_id_of(message.conversation_key, message.channel_id),
        text=message.text,
        reply_to=message.reply_to,
        source_event_id=event_id,
        correlation_id=correlation_id,
        template=message.template,
        buttons=message.buttons,
    )


def precheck(job: SendJob, channel: Channel | None, sends_to: Container[str]) -> str | None:
    """Why the job cannot be sent at all (no provider call), or None. `sends_to`: the channel
    types there is a provider for."""
    if channel is None:
        return UNKNOWN_CHANNEL
    if channel.type not in sends_to:
        return UNSUPPORTED_CHANNEL_TYPE
    if job.chat_id is None:
        return INVALID_CONVERSATION_KEY
    if job.template is not None and channel.type != ChannelType.WHATSAPP:
        return TEMPLATES_NOT_SUPPORTED
    if job.change is MessageChange.DELETE:
        return None
    if not job.text or not job.text.strip():
        return EMPTY_TEXT  # attachments-only replies need sendDocument & co, not there yet
    if len(job.text) > channel.max_text_length:
        return TEXT_TOO_LONG
    return None


@dataclass(frozen=True)
class OutgoingMedia:
    """A file to send with a message: by the provider's media id (uploaded before) or by a
    link the provider fetches. (The sender does not make these yet: operators' files come
    with the attachments issue; the providers already know how to send them.)"""

    kind: str
    """image, document, audio, video or sticker (WhatsApp's message types)."""
    media_id: str | None = None
    link: str | None = None
    file_name: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """What a provider sends: an operator's text to one chat, as a reply to one of the chat's
    messages when the provider's own id for it is known; as an approved template, or with a
    file (`text` its caption), where the provider has them."""

    chat_id: str
    text: str
    reply_to: str | None = None
    message_id: UUID | None = None
    """Our id of the message (e-mail derives the Message-ID of the reply from it)."""
    template: MessageTemplate | None = None
    media: OutgoingMedia | None = None
    buttons: tuple[Button, ...] = ()
    """Buttons to show under it; a provider without buttons sends the text alone (the text
    then says what to answer)."""


def outgoing(job: SendJob, reply_to_provider_id: str | None) -> Outgoing:
    assert job.chat_id is not None and job.text is not None, "precheck first"
    return Outgoing(
        job.chat_id,
        job.text,
        reply_to_provider_id,
        message_id=job.message_id,
        template=job.template,
        buttons=job.buttons,
    )


@dataclass(frozen=True)
class Edit:
    """New text for a message the provider knows by `provider_message_id`."""

    chat_id: str
    provider_message_id: str
    text: str


@dataclass(frozen=True)
class Delete:
    chat_id: str
    provider_message_id: str


def change_of(job: SendJob, provider_message_id: str) -> Edit | Delete:
    assert job.chat_id is not None and job.change is not None, "precheck first"
    if job.change is MessageChange.DELETE:
        return Delete(job.chat_id, provider_message_id)
    assert job.text is not None, "precheck first"
    return Edit(job.chat_id, provider_message_id, job.text)


def telegram_edit_message_text(edit: Edit) -> dict[str, Any]:
    """The Bot API `editMessageText` body."""
    return {
        "chat_id": _telegram_chat(edit.chat_id),
        "message_id": _telegram_message(edit.provider_message_id),
        "text": edit.text,
    }


def telegram_delete_message(delete: Delete) -> dict[str, Any]:
    """The Bot API `deleteMessage` body."""
    return {
        "chat_id": _telegram_chat(delete.chat_id),
        "message_id": _telegram_message(delete.provider_message_id),
    }


def _telegram_chat(chat_id: str) -> int | str:
    return int(chat_id) if _is_int(chat_id) else chat_id


def _telegram_message(message_id: str) -> int | str:
    return int(message_id) if _is_int(message_id) else message_id


def telegram_send_message(message: Outgoing) -> dict[str, Any]:
    """The Bot API `sendMessage` body."""
    chat_id: int | str = int(message.chat_id) if _is_int(message.chat_id) else message.chat_id
    body: dict[str, Any] = {"chat_id": chat_id, "text": message.text}
    if message.reply_to is not None and _is_int(message.reply_to):
        body["reply_to_message_id"] = int(message.reply_to)
        # A quoted message the customer deleted must not make the reply fail.
        body["allow_sending_without_reply"] = True
    if message.buttons:
        # Left to right, as a rating scale reads; Telegram shows at most 8 buttons a row.
        keys = [{"text": b.text, "callback_data": b.data} for b in message.buttons]
        rows = [keys[i : i + _TELEGRAM_ROW] for i in range(0, len(keys), _TELEGRAM_ROW)]
        body["reply_markup"] = {"inline_keyboard": rows}
    return body


_TELEGRAM_ROW = 8


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


# -- what the provider said ----------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str


@dataclass(frozen=True)
class Transient:
    """Worth another attempt, because the provider cannot have shown the message: a 5xx or
    429 answer, or a failure before the request left (connect error or connect timeout)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Rejected:
    """The provider refused the message; retrying would not help."""

    reason: str


@dataclass(frozen=True)
class Unknown:
    """The request left but no readable answer came back: the customer may have the message.
    Sending again could show it twice, so it is not retried (Telegram has no idempotency key
    nor a way to look a sent message up, so there is nothing to reconcile with)."""

    detail: str


ProviderOutcome = Accepted | Transient | Rejected | Unknown
"""Sent, worth another attempt, refused, or unknown (the message may be out)."""


class Provider(Protocol):
    """Delivery for one channel type (telegram, whatsapp, widget...): the outbound side of
    ingest's `ChannelAdapter`. The call is the provider's I/O; what its answer means is decided
    here, by the provider's pure classifier (e.g. `classify_telegram`). Each method makes one
    attempt, classified, and never raises for provider or network trouble."""

    async def send(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        message: Outgoing,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        """Only what certainly happened before the request left may be `Transient`."""
        ...

    async def edit(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        edit: Edit,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        """Accepted: the customer now sees the new text."""
        ...

    async def delete(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        delete: Delete,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        """Accepted: the message is gone from the customer's chat."""
        ...


class CannotChangeSent:
    """The `edit` and `delete` of a provider that cannot change a message once sent (e-mail,
    WhatsApp): refused without a call, for the reason the provider names in `cannot_change`."""

    cannot_change: ClassVar[str]

    async def edit(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        edit: Edit,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return Rejected(self.cannot_change)

    async def delete(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        delete: Delete,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return Rejected(self.cannot_change)


def classify_telegram(status: int, body: object) -> ProviderOutcome:
    """Map a Bot API HTTP answer to an outcome (`{"ok", "result" | "error_code",
    "description", "parameters": {"retry_after"}}`)."""
    data = body if isinstance(body, dict) else {}
    description = str(data.get("description") or f"HTTP {status}")
    if status == 429:
        params = data.get("parameters")
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        wait = float(retry_after) if isinstance(retry_after, int | float) else None
        return Transient(description, retry_after=wait)
    if status >= 500:
        return Transient(description)
    if status >= 400:
        return Rejected(description)
    result = data.get("result")
    message_id = result.get("message_id") if isinstance(result, dict) else None
    if 200 <= status < 300 and data.get("ok") is True and message_id is not None:
        return Accepted(str(message_id))
    # A 2xx we cannot read: the message may well be out, so it must not be sent again.
    return Unknown(f"unreadable provider answer (HTTP {status})")


# Telegram's 400s that mean the change is already there: editing to the same text (a retry
# whose first answer was lost) and deleting what is gone (the same, or the chat is gone).
_ALREADY_DONE = ("message is not modified", "message to delete not found")


def classify_telegram_change(
    status: int, body: object, provider_message_id: str
) -> ProviderOutcome:
    """Map a Bot API answer to `editMessageText` or `deleteMessage` (`result` is the edited
    Message, or `true`) to an outcome; accepted names the changed message."""
    data = body if isinstance(body, dict) else {}
    description = str(data.get("description") or "")
    if status == 400 and any(done in description for done in _ALREADY_DONE):
        return Accepted(provider_message_id)
    if status >= 400:
        return classify_telegram(status, body)
    if 200 <= status < 300 and data.get("ok") is True and data.get("result") not in (None, False):
        return Accepted(provider_message_id)
    return Unknown(f"unreadable provider answer (HTTP {status})")


# -- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dispatched:
    provider_message_id: str


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str
    detail: str | None = None
    """What happened, when the reason alone does not say (kept as the job's last error)."""


Decision = Dispatched | RetryLater | GiveUp


def decide(
    outcome: ProviderOutcome,
    attempt: int,
    policy: RetryPolicy,
    jitter: float,
    *,
    idempotent: bool = False,
) -> Decision:
    """What to do after attempt number `attempt` (1-based) ended with `outcome`.

    `idempotent`: doing it twice does no harm (an edit or deletion: Telegram answers the
    second "not modified" / "not found", which counts as done), so an unknown outcome is
    tried again instead of given up; a send is not (the customer would read it twice)."""
    if isinstance(outcome, Accepted):
        return Dispatched(outcome.provider_message_id)
    if isinstance(outcome, Rejected):
        return GiveUp(outcome.reason)
    if isinstance(outcome, Unknown):
        if not idempotent:
            return GiveUp(OUTCOME_UNKNOWN, detail=outcome.detail)
        outcome = Transient(outcome.detail)
    limit = policy.max_attempts
    if outcome.retry_after is not None:
        limit += policy.rate_limited_attempts
    if attempt >= limit:
        return GiveUp(f"gave up after {attempt} attempts: {outcome.reason}")
    return RetryLater(policy.delay(attempt, outcome.retry_after, jitter), outcome.reason)


# -- per-channel pacing --------------------------------------------------------------------


@dataclass
class ChannelPacer:
    """Spaces sends to one channel at least 1/rate apart (0 = unlimited).

    `reserve` books the next free slot and says how long to wait for it, so concurrent
    senders queue up instead of bursting into the provider's own limit.
    """

    rate_per_second: float
    _next_free: dict[str, float] = field(default_factory=dict)
    _held_until: dict[str, float] = field(default_factory=dict)

    def reserve(self, channel_id: str, now: float) -> float:
        held = self._held_until.get(channel_id, now)
        if self.rate_per_second <= 0:
            return max(0.0, held - now)
        slot = max(now, self._next_free.get(channel_id, now), held)
        self._next_free[channel_id] = slot + 1.0 / self.rate_per_second
        return slot - now

    def hold(self, channel_id: str, until: float) -> None:
        """The provider said "retry after": no send to the channel (the bot) before `until`,
        whichever chat it is for; sending anyway would prolong its flood ban."""
        self._held_until[channel_id] = max(until, self._held_until.get(channel_id, until))


# -- WhatsApp Cloud API ------------------------------------------------------------------------


def whatsapp_message(message: Outgoing) -> dict[str, Any]:
    """The Cloud API `POST /{phone_number_id}/messages` body: text, a template, or a media
    message (the text as its caption), quoting `reply_to` (a wamid) when given."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.chat_id,
    }
    if message.reply_to is not None:
        body["context"] = {"message_id": message.reply_to}
    if message.template is not None:
        template: dict[str, Any] = {
            "name": message.template.name,
            "language": {"code": message.template.language},
        }
        if message.template.variables:
            parameters = [{"type": "text", "text": v} for v in message.template.variables]
            template["components"] = [{"type": "body", "parameters": parameters}]
        return body | {"type": "template", "template": template}
    if message.media is not None:
        media = message.media
        fields: dict[str, Any] = {"id": media.media_id} if media.media_id else {"link": media.link}
        if message.text and media.kind in ("image", "document", "video"):
            fields["caption"] = message.text
        if media.file_name and media.kind == "document":
            fields["filename"] = media.file_name
        return body | {"type": media.kind, media.kind: fields}
    return body | {"type": "text", "text": {"body": message.text, "preview_url": False}}


# Graph API error codes that mean "too many, slow down": the app's or the number's rate
# limits, spam protection, and the pair rate limit between two numbers.
_WHATSAPP_THROTTLED = frozenset({4, 80007, 130429, 131048, 131056})
# Codes worth another attempt though the status is a 4xx: a temporary service error.
_WHATSAPP_TEMPORARY = frozenset({1, 2, 131000, 133004})


def classify_whatsapp(status: int, body: object) -> ProviderOutcome:
    """Map a Cloud API answer to an outcome (`{"messages": [{"id"}]}`, or
    `{"error": {"code", "message", "error_data": {"details"}}}`)."""
    data = body if isinstance(body, dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else None
    if error is not None or status >= 400:
        error = error or {}
        code = error.get("code")
        details = error.get("error_data")
        detail = details.get("details") if isinstance(details, dict) else None
        text = str(error.get("message") or f"HTTP {status}")
        reason = f"whatsapp {code}: {text}" if code is not None else text
        if detail:
            reason = f"{reason} ({detail})"
        if status == 429 or code in _WHATSAPP_THROTTLED:
            return Transient(reason)
        if status >= 500 or code in _WHATSAPP_TEMPORARY:
            return Transient(reason)
        return Rejected(reason)
    messages = data.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    if 200 <= status < 300 and isinstance(wamid, str) and wamid:
        return Accepted(wamid)
    # A 2xx we cannot read: the message may well be out, so it must not be sent again.
    return Unknown(f"unreadable provider answer (HTTP {status})")
