"""WhatsApp Cloud API, an outbound `Provider`: `POST {api_base}/{version}/{phone_number_id}/
messages` with the channel's access token (HTTP only; domain.whatsapp_message writes the body
and domain.classify_whatsapp reads the answer).

The Cloud API cannot edit or delete a message once sent: those are refused without a call (the
dialogs API does not offer them for WhatsApp dialogs anyway). Failures before the request left
are retried, after it the outcome is unknown, exactly as for Telegram (`telegram.classify_failure`).
"""

from __future__ import annotations

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
    classify_whatsapp,
    whatsapp_message,
)
from openlines.outbound.telegram import call_timeout, classify_failure

CANNOT_CHANGE = "whatsapp cannot edit or delete a sent message"


NOT_CONFIGURED = "whatsapp channel without whatsapp.phone_number_id in the lines config"


def messages_url(channel: Channel) -> str:
    assert channel.whatsapp is not None, "checked by the caller"
    settings = channel.whatsapp
    return (
        f"{channel.api_base.rstrip('/')}/{settings.api_version}/{settings.phone_number_id}/messages"
    )


class WhatsAppProvider:
    """Sends through the channel's phone number (`whatsapp.phone_number_id`, `token`)."""

    async def send(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        message: Outgoing,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        if channel.whatsapp is None:
            return Rejected(NOT_CONFIGURED)
        with tracer().start_as_current_span(
            "whatsapp messages",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "openlines.channel_id": channel.id},
        ) as span:
            try:
                async with http.post(
                    messages_url(channel),
                    json=whatsapp_message(message),
                    headers=inject_http({"Authorization": f"Bearer {channel.token}"}),
                    timeout=call_timeout(timeout, connect_timeout),
                ) as response:
                    span.set_attribute("http.response.status_code", response.status)
                    try:
                        data: object = await response.json(content_type=None)
                    except (ValueError, aiohttp.ClientError, TimeoutError):
                        # The status came; the body did not: a 2xx without it is unknown.
                        data = None
                    return classify_whatsapp(response.status, data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return classify_failure(exc)

    async def edit(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        edit: Edit,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return Rejected(CANNOT_CHANGE)

    async def delete(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        delete: Delete,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return Rejected(CANNOT_CHANGE)
