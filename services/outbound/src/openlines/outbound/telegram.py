"""The Telegram Bot API `sendMessage` call (HTTP only; domain.classify_telegram reads it)."""

from __future__ import annotations

from typing import Any

import aiohttp
from opentelemetry.trace import SpanKind

from openlines.kit.lines import Channel
from openlines.kit.telemetry import inject_http, tracer
from openlines.outbound.domain import ProviderOutcome, Transient, classify_telegram


def send_message_url(channel: Channel) -> str:
    return f"{channel.api_base.rstrip('/')}/bot{channel.token}/sendMessage"


async def send_message(
    http: aiohttp.ClientSession, channel: Channel, body: dict[str, Any], timeout: float
) -> ProviderOutcome:
    """One call, one outcome. Never raises for provider or network trouble."""
    with tracer().start_as_current_span(
        "telegram sendMessage",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "POST", "openlines.channel_id": channel.id},
    ) as span:
        try:
            async with http.post(
                send_message_url(channel),
                json=body,
                headers=inject_http({}),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                span.set_attribute("http.response.status_code", response.status)
                try:
                    data: object = await response.json(content_type=None)
                except ValueError:
                    data = None
                return classify_telegram(response.status, data)
        except TimeoutError:
            return Transient("timeout")
        except aiohttp.ClientError as exc:
            # The class name only: messages of some errors carry the URL, i.e. the bot token.
            return Transient(f"connection error: {type(exc).__name__}")
