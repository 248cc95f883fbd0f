"""The sandbox provider: stands in for api.telegram.org (and WhatsApp's Cloud API) locally.

It speaks the documented request and response shapes, records every message it accepted (in
memory, per channel) and can be told to fail the next N calls, so that tests and the demo see
what a real provider would do:

- `POST /sandbox/{channel_id}/bot{token}/sendMessage`   Telegram Bot API
- `POST /sandbox/{channel_id}/bot{token}/editMessageText` and `.../deleteMessage`   the same
- `POST /sandbox/{channel_id}/{version}/{phone_number_id}/messages`   WhatsApp Cloud API (text,
  template, image/document/audio/video/sticker); each accepted message is followed by its
  `sent`, `delivered` and `read` status webhooks, signed with the channel's app secret, posted
  to `{webhook_base}/webhooks/whatsapp/{channel_id}` (`failed` instead when a fault
  with `delivery_failure` is queued)
- `GET|DELETE /sandbox/{channel_id}/sent`   what it accepted: `sent`, `edited`, `deleted`
  (DELETE forgets it)
- `POST|DELETE /sandbox/{channel_id}/faults`   queue forced failures / clear them
- an SMTP relay for `email` channels (sandbox_mail.py), on OPENLINES_SMTP_PORT when set
- `POST /sandbox/{channel_id}/press`   the customer presses an inline keyboard button of a
  message it sent: Telegram's `callback_query` update goes to the channel's webhook
  (`webhook_base` + `/webhooks/telegram/<channel_id>`, with the channel's secret)

A channel's `api_base` is then `http://127.0.0.1:8090/sandbox/<channel_id>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openlines.kit.http.app import create_app
from openlines.kit.http.errors import ApiError
from openlines.kit.http.routes import read_json
from openlines.kit.settings import KitSettings

TELEGRAM_TEXT_LIMIT = 4096
# Telegram's Integer fits in 52 bits (Bot API docs); a message id is a positive one.
TELEGRAM_MAX_INTEGER = 2**52
TELEGRAM_CALLBACK_DATA = 64  # bytes

# What Telegram answers for each status the sandbox can be told to fail with.
FAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class SandboxSettings(KitSettings):
    service_name: str = "sandbox"
    http_port: int = 8090
    # The SMTP relay of the email channels (0: none); the local stack runs it on port base + 11.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 0
    # Where the channels' webhooks are (the gateway; empty: none): button presses and WhatsApp
    # status webhooks are delivered there, as the providers deliver to the URL a bot set.
    webhook_base: str = ""


class PressRequest(BaseModel):
    """`POST /sandbox/{channel_id}/press`: the customer of `chat_id` presses a button of the
    message `message_id` (default: the latest one sent to the chat with buttons), named by its
    `data` or its `text` (default: none given is refused)."""

    model_config = ConfigDict(extra="forbid")

    chat_id: int | str
    message_id: int | None = None
    data: str | None = None
    text: str | None = None
    user_id: int | None = Field(default=None, description="default: the chat id")
    name: str = Field(default="Customer", max_length=64)

    @model_validator(mode="after")
    def _one_button(self) -> PressRequest:
        if (self.data is None) == (self.text is None):
            raise ValueError("name the button by exactly one of data and text")
        return self


class FaultRequest(BaseModel):
    """`POST /sandbox/{channel_id}/faults` body: fail (or delay) the next `times` calls.

    `status: 200` with `delay_seconds` makes a slow but successful provider (the message is
    recorded after the delay, as a provider that answers after the client gave up).
    `disconnect: true` closes the connection instead of answering; with `status: 200` the
    message is recorded first (a provider that took it and lost the answer on the way back).
    """

    model_config = ConfigDict(extra="forbid")

    status: int
    times: int = Field(default=1, ge=1, le=10_000)
    retry_after: int = Field(default=1, ge=0, le=3600)
    description: str | None = Field(
        default=None,
        max_length=200,
        description="Telegram's error text instead of the status's usual one, e.g. "
        '"Bad Request: message can\'t be deleted for everyone"',
    )
    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    disconnect: bool = False
    smtp_code: int | None = Field(
        default=None, ge=400, le=599, description="the SMTP relay's reply code instead of the usual"
    )
    delivery_failure: bool = Field(
        default=False,
        description="WhatsApp, with status 200: the message is accepted, then its status"
        " webhook says `failed` (error 131026, undeliverable) instead of delivered and read",
    )

    @model_validator(mode="after")
    def _known_status(self) -> FaultRequest:
        if self.status != 200 and self.status not in FAULT_DESCRIPTIONS:
            allowed = sorted([200, *FAULT_DESCRIPTIONS])
            raise ValueError(f"status must be one of {allowed}")
        return self


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: int
    delay_seconds: float
    disconnect: bool = False
    description: str | None = None
    smtp_code: int | None = None
    delivery_failure: bool = False


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int | str
    text: str
    reply_to_message_id: int | str | None
    at: float
    api: str
    type: str = "text"
    """WhatsApp's message type (text, template, image...)."""
    body: dict[str, Any] | None = None
    """WhatsApp: the request body as the sandbox got it."""
    reply_markup: dict[str, Any] | None = None
    """Telegram's inline keyboard, as sent: {"inline_keyboard": [[{text, callback_data}]]}."""

    def as_json(self) -> dict[str, Any]:
        json: dict[str, Any] = {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "text": self.text,
            "reply_to_message_id": self.reply_to_message_id,
            "at": self.at,
            "api": self.api,
        }
        if self.api == "whatsapp":
            json |= {"type": self.type, "body": self.body, "wamid": self.wamid}
        if self.reply_markup is not None:
            json["reply_markup"] = self.reply_markup
        return json

    @property
    def wamid(self) -> str:
        return f"wamid.sandbox.{self.message_id}"

    def button(self, *, data: str | None, text: str | None) -> dict[str, Any] | None:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        for key in (key for row in rows for key in row):
            if (data is not None and key.get("callback_data") == data) or (
                text is not None and key.get("text") == text
            ):
                return dict(key)
        return None


@dataclass(frozen=True)
class MessageChanged:
    """An `editMessageText` (`text`) or `deleteMessage` (`text` None) it applied."""

    message_id: int
    chat_id: int | str
    text: str | None
    at: float

    def as_json(self) -> dict[str, Any]:
        json: dict[str, Any] = {"message_id": self.message_id, "chat_id": self.chat_id}
        if self.text is not None:
            json["text"] = self.text
        return json | {"at": self.at}


@dataclass
class ChannelMailbox:
    """What one channel's provider saw."""

    sent: list[SentMessage] = field(default_factory=list)
    edited: list[MessageChanged] = field(default_factory=list)
    deleted: list[MessageChanged] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    rejected: int = 0  # calls answered with a forced failure
    mails: list[dict[str, Any]] = field(default_factory=list)  # e-mail: headers and parts
    status_webhooks: list[dict[str, Any]] = field(default_factory=list)
    """WhatsApp: the status webhooks posted back, with ingest's answer."""
    presses: list[dict[str, Any]] = field(default_factory=list)
    """Buttons pressed (`press`): the callback_query sent and the webhook's answer."""
    answered_callbacks: list[str] = field(default_factory=list)
    """callback_query ids the bot answered (answerCallbackQuery, or in a webhook's answer)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_fault(self) -> Fault | None:
        return self.faults.popleft() if self.faults else None

    def record(
        self,
        chat_id: int | str,
        text: str,
        reply_to: int | str | None,
        api: str,
        *,
        type: str = "text",
        body: dict[str, Any] | None = None,
        reply_markup: dict[str, Any] | None = None,
    ) -> SentMessage:
        message = SentMessage(
            next(self._ids),
            chat_id,
            text,
            reply_to,
            time.time(),
            api,
            type=type,
            body=body,
            reply_markup=reply_markup,
        )
        self.sent.append(message)
        return message

    def keyboard_message(self, chat_id: int | str, message_id: int | None) -> SentMessage | None:
        """The message `message_id` of the chat (None: its latest one with buttons)."""
        for message in reversed(self.sent):
            if str(message.chat_id) != str(chat_id):
                continue
            if message_id is None and message.reply_markup is not None:
                return message
            if message.message_id == message_id:
                return message
        return None

    def current_text(self, chat_id: int | str, message_id: int) -> str | None:
        """The text the chat shows for this message now; None if it has no such message."""
        if any((d.chat_id, d.message_id) == (chat_id, message_id) for d in self.deleted):
            return None
        for edit in reversed(self.edited):
            if (edit.chat_id, edit.message_id) == (chat_id, message_id):
                return edit.text
        for message in self.sent:
            if (message.chat_id, message.message_id) == (chat_id, message_id):
                return message.text
        return None


class Sandbox:
    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        webhook_base: str = "",
    ) -> None:
        # Known channels' bot tokens: a wrong one is 401, as Telegram answers. Channels not
        # listed accept any token (tests make up channel ids).
        self.tokens = dict(tokens or {})
        # Known channels' webhook secrets: what Telegram sends with every update, and the
        # WhatsApp app secret that signs status webhooks.
        self.secrets = dict(secrets or {})
        self.webhook_base = webhook_base.rstrip("/")
        self.mailboxes: dict[str, ChannelMailbox] = {}
        self._posting: set[asyncio.Task[None]] = set()

    def mailbox(self, channel_id: str) -> ChannelMailbox:
        return self.mailboxes.setdefault(channel_id, ChannelMailbox())

    def install(self, app: web.Application) -> None:
        r = app.router
        # Telegram takes GET and POST for every method.
        for method in ("GET", "POST"):
            r.add_route(
                method, "/sandbox/{channel_id}/bot{token}/sendMessage", self.telegram_send_message
            )
            r.add_route(
                method, "/sandbox/{channel_id}/bot{token}/editMessageText", self.telegram_edit
            )
            r.add_route(
                method, "/sandbox/{channel_id}/bot{token}/deleteMessage", self.telegram_delete
            )
            r.add_route(
                method,
                "/sandbox/{channel_id}/bot{token}/answerCallbackQuery",
                self.telegram_answer_callback,
            )
        r.add_route("*", "/sandbox/{channel_id}/bot{token}/{method}", self.telegram_unknown)
        r.add_get("/sandbox/{channel_id}/sent", self.get_sent)
        r.add_delete("/sandbox/{channel_id}/sent", self.forget_sent)
        r.add_post("/sandbox/{channel_id}/faults", self.add_faults)
        r.add_post("/sandbox/{channel_id}/press", self.press)
        r.add_delete("/sandbox/{channel_id}/faults", self.clear_faults)
        r.add_post("/sandbox/{channel_id}/{version}/{phone_number_id}/messages", self.whatsapp_send)

    # -- Telegram Bot API -------------------------------------------------------------------

    async def _telegram_call(
        self, request: web.Request
    ) -> tuple[ChannelMailbox, dict[str, Any], int | str] | web.Response:
        """What every Telegram method checks first: the bot token, the parameters, the chat;
        the channel's mailbox, the parameters and the chat id, or Telegram's refusal."""
        channel_id = request.match_info["channel_id"]
        expected = self.tokens.get(channel_id)
        if expected is not None and request.match_info["token"] != expected:
            return _telegram_error(401, "Unauthorized")
        params = await _telegram_params(request)
        if params is None:
            return _telegram_error(400, "Bad Request: can't parse JSON object")
        chat_id = _chat_id(params.get("chat_id"))
        if chat_id is None:
            return _telegram_error(400, "Bad Request: chat_id is empty")
        return self.mailbox(channel_id), params, chat_id

    async def telegram_send_message(self, request: web.Request) -> web.Response:
        call = await self._telegram_call(request)
        if isinstance(call, web.Response):
            return call
        mailbox, params, chat_id = call
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _telegram_error(400, "Bad Request: message text is empty")
        if len(text) > TELEGRAM_TEXT_LIMIT:
            return _telegram_error(400, "Bad Request: message is too long")
        try:
            reply_to = _reply_to(params)
        except ValueError:
            return _telegram_error(400, "Bad Request: invalid reply_to_message_id")
        try:
            markup = _inline_keyboard(params.get("reply_markup"))
        except ValueError as exc:
            return _telegram_error(400, f"Bad Request: {exc}")
        fault, refused = await _scripted_fault(mailbox, request, _telegram_fault)
        if refused is not None:
            return refused
        message = mailbox.record(chat_id, text, reply_to, "telegram", reply_markup=markup)
        if fault is not None and fault.disconnect:
            return _drop(request)
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "from": {"id": 0, "is_bot": True, "first_name": "sandbox", "username": "sandbox_bot"},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(message.at),
            "text": text,
        }
        if reply_to is not None:
            result["reply_to_message"] = {"message_id": reply_to, "chat": {"id": chat_id}}
        if markup is not None:
            result["reply_markup"] = markup
        return web.json_response({"ok": True, "result": result})

    async def telegram_answer_callback(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        expected = self.tokens.get(channel_id)
        if expected is not None and request.match_info["token"] != expected:
            return _telegram_error(401, "Unauthorized")
        params = await _telegram_params(request)
        query_id = params.get("callback_query_id") if params is not None else None
        if not isinstance(query_id, str) or not query_id:
            return _telegram_error(400, "Bad Request: query is too old or query ID is invalid")
        self.mailbox(channel_id).answered_callbacks.append(query_id)
        return web.json_response({"ok": True, "result": True})

    # -- the customer presses a button --------------------------------------------------------

    async def press(self, request: web.Request) -> web.Response:
        """Telegram's side of a press: the `callback_query` update, posted to the channel's
        webhook as Telegram would post it; a method call in the webhook's answer (e.g.
        answerCallbackQuery) is performed, as Telegram performs it."""
        channel_id = request.match_info["channel_id"]
        try:
            wanted = PressRequest.model_validate(await read_json(request))
        except ValidationError as exc:
            raise ApiError(400, "invalid_press", _describe(exc)) from None
        mailbox = self.mailbox(channel_id)
        message = mailbox.keyboard_message(wanted.chat_id, wanted.message_id)
        if message is None or message.reply_markup is None:
            raise ApiError(404, "no_keyboard", "no message with buttons sent to that chat")
        button = message.button(data=wanted.data, text=wanted.text)
        if button is None or "callback_data" not in button:
            raise ApiError(404, "no_such_button", "the message has no such callback button")
        update = _callback_update(message, button["callback_data"], wanted)
        status, answer = await self._deliver(channel_id, update)
        if isinstance(answer, dict) and answer.get("method") == "answerCallbackQuery":
            mailbox.answered_callbacks.append(str(answer.get("callback_query_id")))
        pressed = {"update": update, "webhook": {"status": status, "answer": answer}}
        mailbox.presses.append(pressed)
        return web.json_response({"ok": 200 <= status < 300, **pressed})

    async def _deliver(self, channel_id: str, update: dict[str, Any]) -> tuple[int, Any]:
        url = f"{self.webhook_base}/webhooks/telegram/{channel_id}"
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secrets.get(channel_id, "")}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                http.post(url, json=update, headers=headers) as response,
            ):
                text = await response.text()
                try:
                    return response.status, json.loads(text)
                except ValueError:
                    return response.status, text
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(502, "webhook_unreachable", f"{url}: {type(exc).__name__}") from None

    async def telegram_edit(self, request: web.Request) -> web.Response:
        return await self._telegram_change(request, edit=True)

    async def telegram_delete(self, request: web.Request) -> web.Response:
        return await self._telegram_change(request, edit=False)

    async def _telegram_change(self, request: web.Request, *, edit: bool) -> web.Response:
        """`editMessageText` / `deleteMessage` of a message this sandbox sent, with Telegram's
        answers for a message it does not have and for an edit that changes nothing."""
        call = await self._telegram_call(request)
        if isinstance(call, web.Response):
            return call
        mailbox, params, chat_id = call
        try:
            message_id = _positive_integer(params.get("message_id"))
        except ValueError:
            return _telegram_error(400, "Bad Request: message identifier is not specified")
        text = params.get("text")
        if edit:
            if not isinstance(text, str) or not text.strip():
                return _telegram_error(400, "Bad Request: message text is empty")
            if len(text) > TELEGRAM_TEXT_LIMIT:
                return _telegram_error(400, "Bad Request: MESSAGE_TOO_LONG")
        fault, refused = await _scripted_fault(mailbox, request, _telegram_fault)
        if refused is not None:
            return refused
        answer = self._apply_change(mailbox, chat_id, message_id, text if edit else None)
        # A 200 disconnect: applied, and the answer lost on the way back.
        return _drop(request) if fault is not None and fault.disconnect else answer

    def _apply_change(
        self, mailbox: ChannelMailbox, chat_id: int | str, message_id: int, text: str | None
    ) -> web.Response:
        """Edit (`text`) or delete (None) the message, answering as Telegram does."""
        edit = text is not None
        current = mailbox.current_text(chat_id, message_id)
        if current is None:
            what = "edit" if edit else "delete"
            return _telegram_error(400, f"Bad Request: message to {what} not found")
        if not edit:
            mailbox.deleted.append(MessageChanged(message_id, chat_id, None, time.time()))
            return web.json_response({"ok": True, "result": True})
        assert text is not None
        if text == current:
            return _telegram_error(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        changed = MessageChanged(message_id, chat_id, text, time.time())
        mailbox.edited.append(changed)
        result = {
            "message_id": message_id,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(changed.at),
            "edit_date": int(changed.at),
            "text": text,
        }
        return web.json_response({"ok": True, "result": result})

    async def telegram_unknown(self, request: web.Request) -> web.Response:
        return _telegram_error(404, "Not Found")

    # -- WhatsApp Cloud API -----------------------------------------------------------------

    async def whatsapp_send(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        expected = self.tokens.get(channel_id)
        if expected is not None and request.headers.get("Authorization") != f"Bearer {expected}":
            return _whatsapp_error(401, 190, "Invalid OAuth access token.")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _whatsapp_error(400, 100, "(#100) Invalid parameter")
        to = body.get("to")
        content = _whatsapp_content(body)
        if not isinstance(to, str) or not to or content is None:
            return _whatsapp_error(400, 100, "(#100) Invalid parameter")
        kind, text = content
        if len(text) > WHATSAPP_TEXT_LIMIT:
            return _whatsapp_error(400, 100, "(#100) Param text['body'] must be at most 4096")
        context = body.get("context")
        reply_to = context.get("message_id") if isinstance(context, dict) else None
        mailbox = self.mailbox(channel_id)
        fault, refused = await _scripted_fault(mailbox, request, _whatsapp_fault)
        if refused is not None:
            return refused
        message = mailbox.record(
            to,
            text,
            reply_to if isinstance(reply_to, str) else None,
            "whatsapp",
            type=kind,
            body=body,
        )
        failed = fault is not None and fault.delivery_failure
        self._post_statuses(channel_id, request.match_info["phone_number_id"], message, failed)
        if fault is not None and fault.disconnect:
            return _drop(request)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message.wamid}],
            }
        )

    def _post_statuses(
        self, channel_id: str, phone_number_id: str, message: SentMessage, failed: bool
    ) -> None:
        """Report the message's fate to ingest as Meta does, in the background: sent, then
        delivered and read (or failed)."""
        secret = self.secrets.get(channel_id)
        if not self.webhook_base or not secret:
            return
        statuses = ["sent", "failed"] if failed else ["sent", "delivered", "read"]
        task = asyncio.create_task(
            self._report(channel_id, phone_number_id, message, statuses, secret)
        )
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _report(
        self,
        channel_id: str,
        phone_number_id: str,
        message: SentMessage,
        statuses: list[str],
        secret: str,
    ) -> None:
        url = f"{self.webhook_base}/webhooks/whatsapp/{channel_id}"
        mailbox = self.mailbox(channel_id)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for status in statuses:
                body = json.dumps(
                    whatsapp_status_notification(
                        phone_number_id, message.wamid, str(message.chat_id), status
                    )
                ).encode()
                answer = await _post_signed(http, url, body, secret)
                mailbox.status_webhooks.append(
                    {"wamid": message.wamid, "status": status, "answer": answer}
                )

    # -- control ----------------------------------------------------------------------------

    async def get_sent(self, request: web.Request) -> web.Response:
        mailbox = self.mailbox(request.match_info["channel_id"])
        return web.json_response(
            {
                "sent": [m.as_json() for m in mailbox.sent],
                "edited": [m.as_json() for m in mailbox.edited],
                "deleted": [m.as_json() for m in mailbox.deleted],
                "rejected": mailbox.rejected,
                "faults_pending": len(mailbox.faults),
                "mails": mailbox.mails,
                "status_webhooks": mailbox.status_webhooks,
                "presses": mailbox.presses,
                "answered_callbacks": mailbox.answered_callbacks,
            }
        )

    async def forget_sent(self, request: web.Request) -> web.Response:
        mailbox = self.mailbox(request.match_info["channel_id"])
        mailbox.sent.clear()
        mailbox.edited.clear()
        mailbox.deleted.clear()
        mailbox.mails.clear()
        mailbox.status_webhooks.clear()
        mailbox.rejected = 0
        mailbox.presses.clear()
        mailbox.answered_callbacks.clear()
        return web.json_response({"ok": True})

    async def add_faults(self, request: web.Request) -> web.Response:
        try:
            fault = FaultRequest.model_validate(await read_json(request))
        except ValidationError as exc:
            raise ApiError(400, "invalid_fault", _describe(exc)) from None
        mailbox = self.mailbox(request.match_info["channel_id"])
        queued = Fault(
            fault.status,
            fault.retry_after,
            fault.delay_seconds,
            fault.disconnect,
            fault.description,
            fault.smtp_code,
            fault.delivery_failure,
        )
        mailbox.faults.extend([queued] * fault.times)
        return web.json_response({"ok": True, "faults_pending": len(mailbox.faults)})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.mailbox(request.match_info["channel_id"]).faults.clear()
        return web.json_response({"ok": True, "faults_pending": 0})


async def _telegram_params(request: web.Request) -> dict[str, Any] | None:
    """Telegram takes JSON, form data or query parameters alike."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update(await request.post())
    return params


def _inline_keyboard(value: Any) -> dict[str, Any] | None:
    """A sendMessage's `reply_markup` if it is an inline keyboard (JSON, or its text as form
    data sends it); ValueError with Telegram's words when it is not well formed."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("can't parse reply keyboard markup JSON object") from None
    rows = value.get("inline_keyboard") if isinstance(value, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ValueError("can't parse inline keyboard button: InlineKeyboardMarkup expected")
    for key in (key for row in rows for key in row):
        if not isinstance(key, dict) or not isinstance(key.get("text"), str) or not key["text"]:
            raise ValueError("can't parse inline keyboard button: Text must be non-empty")
        data = key.get("callback_data")
        if data is not None and not (
            isinstance(data, str) and 1 <= len(data.encode()) <= TELEGRAM_CALLBACK_DATA
        ):
            raise ValueError("BUTTON_DATA_INVALID")
    return {"inline_keyboard": rows}


_callback_ids = itertools.count(1)


def _callback_update(message: SentMessage, data: str, press: PressRequest) -> dict[str, Any]:
    """The Update Telegram sends for a press of a button under `message`."""
    user_id = press.user_id if press.user_id is not None else press.chat_id
    first, _, last = press.name.strip().partition(" ")
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first or "Customer"}
    if last:
        user["last_name"] = last
    update_id = time.time_ns() // 1000 + next(_callback_ids)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": user,
            "message": {
                "message_id": message.message_id,
                "from": {"id": 0, "is_bot": True, "first_name": "sandbox"},
                "chat": {"id": message.chat_id, "type": "private"},
                "date": int(message.at),
                "text": message.text,
                "reply_markup": message.reply_markup,
            },
            "chat_instance": f"sandbox-{message.chat_id}",
            "data": data,
        },
    }


def _chat_id(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        value = value.strip()
        try:
            return int(value)
        except ValueError:
            return value if value.startswith("@") else None
    return None


def _reply_to(params: Mapping[str, Any]) -> int | None:
    """The quoted message id, None if there is none; ValueError unless it is a positive
    Telegram Integer (an int, or its decimal string as form data sends it). Floats, `1e999`
    (JSON's infinity), booleans and out-of-range numbers are Telegram's 400, not ours 500."""
    value = params.get("reply_to_message_id")
    if value is None and isinstance(params.get("reply_parameters"), dict):
        value = params["reply_parameters"].get("message_id")
    if value is None:
        return None
    return _positive_integer(value)


def _positive_integer(value: Any) -> int:
    """A Telegram message id: ValueError unless a positive Integer (or its decimal string)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a message id must be an integer")
    if not 0 < value < TELEGRAM_MAX_INTEGER:
        raise ValueError("a message id is out of range")
    return value


async def _scripted_fault(
    mailbox: ChannelMailbox, request: web.Request, answer: Callable[[Fault], web.Response]
) -> tuple[Fault | None, web.Response | None]:
    """The channel's next scripted fault, after its delay, and the answer to give instead of
    acting (its error, or a dropped connection), or None: act (a 200 fault that disconnects
    drops the answer after acting)."""
    fault = mailbox.next_fault()
    if fault is None:
        return None, None
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault.status == 200:
        return fault, None
    mailbox.rejected += 1
    return fault, _drop(request) if fault.disconnect else answer(fault)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer; the response returned is never written."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()


def _telegram_error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _telegram_fault(fault: Fault) -> web.Response:
    description = fault.description or FAULT_DESCRIPTIONS[fault.status].format(
        retry_after=fault.retry_after
    )
    if fault.status == 429:
        return _telegram_error(429, description, retry_after=fault.retry_after)
    return _telegram_error(fault.status, description)


WHATSAPP_TEXT_LIMIT = 4096
_WHATSAPP_MEDIA = ("image", "document", "audio", "video", "sticker")


def _whatsapp_content(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(type, what the customer reads) of a Cloud API message body, None if it is not one:
    text, template (name and filled-in variables) or media (by id or link; its caption)."""
    kind = body.get("type", "text")
    if kind == "text":
        text = body.get("text")
        value = text.get("body") if isinstance(text, dict) else None
        return ("text", value) if isinstance(value, str) and value.strip() else None
    if kind == "template":
        template = body.get("template")
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            return None
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            return None
        values = [
            str(p.get("text"))
            for c in template.get("components") or []
            if isinstance(c, dict)
            for p in c.get("parameters") or []
            if isinstance(p, dict)
        ]
        return "template", " | ".join([template["name"], *values])
    if kind in _WHATSAPP_MEDIA:
        media = body.get(kind)
        if not isinstance(media, dict) or not (media.get("id") or media.get("link")):
            return None
        caption = media.get("caption")
        return kind, caption if isinstance(caption, str) else ""
    return None


def whatsapp_status_notification(
    phone_number_id: str, wamid: str, recipient_id: str, status: str
) -> dict[str, Any]:
    """A Cloud API status webhook body (`entry[].changes[].value.statuses`)."""
    entry: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient_id,
    }
    if status == "failed":
        entry["errors"] = [
            {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}
        ]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "statuses": [entry],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "sandbox-waba", "changes": [{"field": "messages", "value": value}]}],
    }


async def _post_signed(
    http: aiohttp.ClientSession, url: str, body: bytes, secret: str, attempts: int = 6
) -> int | str:
    """POST a webhook signed as Meta signs it, retrying as Meta does while ingest cannot take
    it (5xx, no connection); ingest's status, or the last error."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    answer: int | str = "not sent"
    for attempt in range(attempts):
        try:
            async with http.post(url, data=body, headers=headers) as response:
                answer = response.status
                if response.status < 500:
                    return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer = type(exc).__name__
        await asyncio.sleep(0.2 * 2**attempt)
    return answer


def _whatsapp_error(status: int, code: int, message: str) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "sandbox"}
    return web.json_response({"error": error}, status=status)


# The Graph API error each status the sandbox can be told to fail with stands for.
WHATSAPP_FAULTS = {
    400: (100, "(#100) Invalid parameter"),
    403: (131031, "Account has been locked"),
    429: (130429, "Rate limit hit"),
    500: (131000, "Something went wrong"),
    502: (131000, "Something went wrong"),
    503: (131000, "Something went wrong"),
}


def _whatsapp_fault(fault: Fault) -> web.Response:
    code, message = WHATSAPP_FAULTS[fault.status]
    return _whatsapp_error(fault.status, code, fault.description or message)


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors)


def create_sandbox_app(
    settings: KitSettings | None = None,
    tokens: Mapping[str, str] | None = None,
    mail_channels: Mapping[str, str] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
) -> web.Application:
    """The sandbox as an aiohttp app (health, metrics and JSON errors from the kit);
    `mail_channels` (address -> channel id) are relayed by its SMTP server when it has a port."""
    settings = settings or SandboxSettings()
    base = settings.webhook_base if isinstance(settings, SandboxSettings) else ""
    app = create_app(settings)
    sandbox = Sandbox(tokens, secrets=secrets, webhook_base=base)
    sandbox.install(app)
    if isinstance(settings, SandboxSettings) and settings.smtp_port:
        from openlines.stack.sandbox_mail import install_relay

        install_relay(app, sandbox, mail_channels or {}, settings.smtp_host, settings.smtp_port)
    return app
