"""Telegram, the first outbound `Provider`: the Bot API `sendMessage`, `editMessageText` and
`deleteMessage` calls (HTTP only; domain.classify_telegram* read their answers and
domain.telegram_* write their bodies).

What a failure means depends on whether the request may have left: before it did (no
connection, connect timeout) a retry is safe; after it (read timeout, dropped connection,
broken answer) the provider may have shown the message, so the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from opentelemetry.trace import SpanKind

from openlines.events.lines import Channel
from openlines.kit.telemetry import inject_http, tracer
from openlines.outbound.domain import (
    Delete,
    Edit,
    Outgoing,
    ProviderOutcome,
    Rejected,
    Transient,
    Unknown,
    classify_telegram,
    classify_telegram_change,
    telegram_delete_message,
    telegram_edit_message_text,
    telegram_send_message,
)

# The connect phase (pool wait + TCP/TLS) gets at most this share of the call's budget, so it
# always ends, with its own exception, before the overall timeout can fire: a bare timeout
# then always means "after the connection was made".
_CONNECT_SHARE = 0.5


def method_url(channel: Channel, method: str) -> str:
    return f"{channel.api_base.rstrip('/')}/bot{channel.token}/{method}"


def send_message_url(channel: Channel) -> str:
    return method_url(channel, "sendMessage")


def call_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """`total` bounds the call; `connect` (capped to a share of it) bounds the part before the
    request can leave, and raises ConnectionTimeoutError rather than a bare timeout."""
    return aiohttp.ClientTimeout(
        total=total, connect=min(connect, total * _CONNECT_SHARE), sock_read=total
    )


def classify_failure(exc: BaseException) -> ProviderOutcome:
    """An exception of the call as an outcome. Only what certainly happened before the
    request left is Transient; everything else may have reached the provider."""
    # The class name only: messages of some errors carry the URL, i.e. the bot token.
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Transient("connect timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Includes TLS and proxy failures to connect: nothing was written.
        return Transient(f"connection error: {name}")
    if isinstance(exc, aiohttp.InvalidURL):
        return Rejected("invalid provider URL")
    if isinstance(exc, TimeoutError):
        # SocketTimeoutError (sock_read) or the overall timeout: the request was out.
        return Unknown(f"no answer in time: {name}")
    # ServerDisconnectedError, ClientPayloadError, ClientOSError/ConnectionReset on write...
    return Unknown(f"connection lost after sending: {name}")


class TelegramProvider:
    """Sends, edits and deletes through the channel's bot (`token`, `api_base`)."""

    async def send(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        message: Outgoing,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return await _call(
            http,
            channel,
            "sendMessage",
            telegram_send_message(message),
            classify_telegram,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )

    async def edit(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        edit: Edit,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return await _call(
            http,
            channel,
            "editMessageText",
            telegram_edit_message_text(edit),
            lambda status, data: classify_telegram_change(status, data, edit.provider_message_id),
            timeout=timeout,
            connect_timeout=connect_timeout,
        )

    async def delete(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        delete: Delete,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return await _call(
            http,
            channel,
            "deleteMessage",
            telegram_delete_message(delete),
            lambda status, data: classify_telegram_change(status, data, delete.provider_message_id),
            timeout=timeout,
            connect_timeout=connect_timeout,
        )


async def _call(
    http: aiohttp.ClientSession,
    channel: Channel,
    method: str,
    body: dict[str, Any],
    classify: Callable[[int, object], ProviderOutcome],
    *,
    timeout: float,
    connect_timeout: float,
) -> ProviderOutcome:
    """One Bot API call, one outcome. Never raises for provider or network trouble."""
    return await post_json(
        http,
        channel,
        f"telegram {method}",
        method_url(channel, method),
        body,
        {},
        classify,
        timeout=timeout,
        connect_timeout=connect_timeout,
    )


async def post_json(
    http: aiohttp.ClientSession,
    channel: Channel,
    span_name: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    classify: Callable[[int, object], ProviderOutcome],
    *,
    timeout: float,
    connect_timeout: float,
) -> ProviderOutcome:
    """One JSON POST to a provider's HTTP API, its answer read by `classify` (status, parsed
    body or None) and its failure by `classify_failure`. Never raises for provider or network
    trouble; shared by the HTTP providers (Telegram, WhatsApp)."""
    with tracer().start_as_current_span(
        span_name,
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "POST", "openlines.channel_id": channel.id},
    ) as span:
        try:
            async with http.post(
                url,
                json=body,
                headers=inject_http(headers),
                timeout=call_timeout(timeout, connect_timeout),
            ) as response:
                span.set_attribute("http.response.status_code", response.status)
                try:
                    data: object = await response.json(content_type=None)
                except (ValueError, aiohttp.ClientError, TimeoutError):
                    # The status came; the body did not: a 2xx without it is unknown.
                    data = None
                return classify(response.status, data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return classify_failure(exc)
