"""WhatsApp Cloud API, an outbound `Provider`: `POST {api_base}/{version}/{phone_number_id}/
messages` with the channel's access token (HTTP only; domain.whatsapp_message writes the body
and domain.classify_whatsapp reads the answer).

The Cloud API cannot edit or delete a message once sent: those are refused without a call (the
dialogs API does not offer them for WhatsApp dialogs anyway). Failures before the request left
are retried, after it the outcome is unknown, exactly as for Telegram (`telegram.classify_failure`).
"""

from __future__ import annotations

import aiohttp

from openlines.events.lines import Channel
from openlines.outbound.domain import (
    CannotChangeSent,
    Outgoing,
    ProviderOutcome,
    Rejected,
    classify_whatsapp,
    whatsapp_message,
)
from openlines.outbound.telegram import post_json

NOT_CONFIGURED = "whatsapp channel without whatsapp.phone_number_id in the lines config"


def messages_url(channel: Channel) -> str:
    assert channel.whatsapp is not None, "checked by the caller"
    settings = channel.whatsapp
    return (
        f"{channel.api_base.rstrip('/')}/{settings.api_version}/{settings.phone_number_id}/messages"
    )


class WhatsAppProvider(CannotChangeSent):
    """Sends through the channel's phone number (`whatsapp.phone_number_id`, `token`)."""

    cannot_change = "whatsapp cannot edit or delete a sent message"

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
        return await post_json(
            http,
            channel,
            "whatsapp messages",
            messages_url(channel),
            whatsapp_message(message),
            {"Authorization": f"Bearer {channel.token}"},
            classify_whatsapp,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
