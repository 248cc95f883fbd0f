"""`GET|POST /webhooks/whatsapp/{channel_id}`: the subscription handshake and the signed
notifications of the WhatsApp Cloud API (a mixin of `WebhookApi`, which does the rest).

Declared apart from the generic `/webhooks/{channel_type}/{channel_id}` so that the OpenAPI
document shows WhatsApp's own body and its text/plain handshake answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from openlines.events.catalog import ChannelType
from openlines.events.lines import LinesConfig
from openlines.ingest.domain import ChannelAdapter
from openlines.ingest.whatsapp import WhatsAppAdapter
from openlines.kit.http import routes
from openlines.kit.http.errors import ApiError

_HUB_MAX = 1024


class HubVerification(routes.QueryModel):
    """Meta's check of the callback URL when the webhook is subscribed."""

    mode: str = Field(alias="hub.mode", max_length=_HUB_MAX, description="`subscribe`")
    verify_token: str = Field(
        alias="hub.verify_token",
        max_length=_HUB_MAX,
        description="the channel's `whatsapp.verify_token`",
    )
    challenge: str = Field(alias="hub.challenge", max_length=_HUB_MAX, description="echoed")


class WhatsAppNotification(BaseModel):
    """The body Meta posts (documented to its first level: ingest validates the fields it
    maps, `whatsapp.WaNotification`, and ignores the rest)."""

    object: Literal["whatsapp_business_account"]
    entry: list[dict[str, Any]] = Field(
        min_length=1,
        description='`{id, changes: [{field: "messages", value: {metadata: {phone_number_id},'
        " contacts, messages, statuses}}]}`, as documented by Meta",
    )


class WhatsAppAnswer(BaseModel):
    """The events of the body's messages and statuses are on the broker (`ignored`: what
    was acknowledged without an event, when nothing else was)."""

    ok: bool
    event_ids: list[str] = []
    ignored: str | None = None


class WhatsAppRoutes:
    lines: LinesConfig
    adapters: Mapping[str, ChannelAdapter]

    async def accept_webhook(self, request: web.Request, channel_type: str) -> web.Response:
        raise NotImplementedError  # WebhookApi's

    @routes.get(
        "/webhooks/whatsapp/{channel_id}",
        summary="WhatsApp Cloud API: the webhook subscription handshake",
        query=HubVerification,
        content_type="text/plain",
        responses={
            200: "the hub.challenge, echoed as text/plain",
            400: "invalid_query: a hub parameter is missing",
            403: "invalid_verify_token: hub.mode is not subscribe or the token does not match",
            404: "unknown_channel",
        },
        auth="none",
    )
    async def whatsapp_handshake(
        self, request: web.Request, *, query: HubVerification
    ) -> web.Response:
        channel_id = request.match_info["channel_id"]
        found = self.lines.channel(channel_id)
        adapter = self.adapters.get(ChannelType.WHATSAPP)
        if found is None or found[1].type != ChannelType.WHATSAPP or adapter is None:
            raise ApiError(404, "unknown_channel", f"no whatsapp channel {channel_id!r}")
        assert isinstance(adapter, WhatsAppAdapter)
        hub = {
            "hub.mode": query.mode,
            "hub.verify_token": query.verify_token,
            "hub.challenge": query.challenge,
        }
        challenge = adapter.handshake(found[1], hub)
        if challenge is None:
            raise ApiError(403, "invalid_verify_token", "hub.mode or hub.verify_token is wrong")
        return web.Response(text=challenge, content_type="text/plain")

    @routes.post(
        "/webhooks/whatsapp/{channel_id}",
        summary="WhatsApp Cloud API: messages and statuses (entry[].changes[].value)",
        description=(
            "Signed by Meta: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the"
            " app secret>`. Every entry, change, message and status of the body becomes its"
            " own event (`event_ids`); fields ingest does not map are ignored, never refused."
        ),
        body=WhatsAppNotification,
        body_read_by_handler=True,
        responses={
            200: WhatsAppAnswer,
            400: "invalid_update: not a WhatsApp notification",
            401: "invalid_secret: the signature does not match",
            404: "unknown_channel",
            413: "payload_too_large",
            503: "broker_unavailable: not acknowledged by the broker; Meta retries",
        },
        auth="webhook_secret",
    )
    async def whatsapp_notification(self, request: web.Request) -> web.Response:
        return await self.accept_webhook(request, ChannelType.WHATSAPP)
