"""`POST /webhooks/{channel_type}/{channel_id}`: verify, normalise, publish, then answer.

The answer is 200 only once the broker has acknowledged the event; otherwise 503, so that the
provider retries (the retry carries the same deterministic event id: consumers dedupe it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from uuid import UUID

from aiohttp import web
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import Counter
from pydantic import BaseModel

from openlines.events import INBOUND, Envelope
from openlines.events.lines import LinesConfig
from openlines.ingest.domain import Accepted, Batch, ChannelAdapter, InvalidUpdate
from openlines.ingest.telegram import TgUpdate
from openlines.ingest.whatsapp_routes import WhatsAppRoutes
from openlines.kit import metrics
from openlines.kit.http import routes
from openlines.kit.http.errors import ApiError
from openlines.kit.http.routes import read_json
from openlines.kit.log import get_logger

log = get_logger(__name__)

WEBHOOKS = Counter(
    "openlines_ingest_webhooks_total", "Provider webhooks by outcome", ["channel", "outcome"]
)

Publish = Callable[[str, Envelope], Awaitable[None]]


class WebhookAnswer(BaseModel):
    """Accepted (the event is on the broker) or ignored (an update kind not mapped yet).
    A body carrying several updates (WhatsApp) lists the ids of all its events."""

    ok: bool
    event_id: UUID | None = None
    event_ids: list[UUID] | None = None
    ignored: str | None = None
    method: str | None = None
    """Telegram: a Bot API method the webhook's answer calls (answerCallbackQuery)."""
    callback_query_id: str | None = None


# Provider-specific routes (a mixin each) come first in the class: installed before the
# generic route below, they are the ones aiohttp matches for their channel type.
class WebhookApi(WhatsAppRoutes):
    def __init__(
        self,
        *,
        lines: LinesConfig,
        adapters: Mapping[str, ChannelAdapter],
        publish: Publish,
        publish_timeout: float,
        producer_name: str,
    ) -> None:
        self.lines = lines
        self.adapters = adapters
        self.publish = publish
        self.publish_timeout = publish_timeout
        self.producer_name = producer_name

    def install(self, app: web.Application) -> None:
        routes.install(app, self)

    @routes.post(
        "/webhooks/{channel_type}/{channel_id}",
        summary="A provider's webhook (telegram: a Telegram Bot API Update)",
        description=(
            "The body is the provider's own format: the fields ingest maps are validated, and"
            " fields it does not know are ignored, never refused (providers add fields over"
            " time, and a refused update is retried forever)."
        ),
        body=TgUpdate,
        body_read_by_handler=True,
        responses={
            200: WebhookAnswer,
            400: "invalid_update: not an update of this provider",
            401: "invalid_secret",
            404: "unknown_channel_type, unknown_channel",
            503: "broker_unavailable: not acknowledged by the broker; the provider retries",
        },
        auth="webhook_secret",
    )
    async def receive(self, request: web.Request) -> web.Response:
        return await self.accept_webhook(request, request.match_info["channel_type"])

    async def accept_webhook(self, request: web.Request, channel_type: str) -> web.Response:
        channel_id = request.match_info["channel_id"]
        # Only configured channel ids become label values: bounded metric cardinality.
        label = channel_id if self.lines.channel(channel_id) is not None else "unknown"
        try:
            response = await self._receive(request, channel_type, channel_id)
        except ApiError as exc:
            metrics.child(WEBHOOKS, label, exc.code).inc()
            raise
        metrics.child(WEBHOOKS, label, "ignored" if "ignored" in response else "accepted").inc()
        return web.json_response(response)

    async def _receive(
        self, request: web.Request, channel_type: str, channel_id: str
    ) -> dict[str, object]:
        adapter = self.adapters.get(channel_type)
        if adapter is None:
            raise ApiError(404, "unknown_channel_type", f"no webhooks for {channel_type!r}")
        found = self.lines.channel(channel_id)
        if found is None or found[1].type != channel_type:
            raise ApiError(404, "unknown_channel", f"no {channel_type} channel {channel_id!r}")
        line, channel = found
        body = await _read_body(request)
        if not adapter.verify(channel, request.headers, body):
            raise ApiError(401, "invalid_secret", "webhook secret or signature does not match")
        # The body is cached: this only parses it. A NUL in a customer's text is dropped, not
        # refused: a refused update is retried by the provider forever.
        data = await read_json(request, nul="strip")
        try:
            outcome = adapter.normalise(data, line, channel)
        except InvalidUpdate as exc:
            raise ApiError(400, "invalid_update", f"not a {channel_type} update: {exc}") from None
        if isinstance(outcome, Batch):
            for ignored in outcome.ignored:
                log.info("webhook update ignored", channel=channel_id, kind=ignored.kind)
            envelopes = [self._envelope(accepted) for accepted in outcome.accepted]
            await self._publish(channel_id, envelopes)
            answer: dict[str, object] = {
                "ok": True,
                "event_ids": [str(e.event_id) for e in envelopes],
            }
            if not envelopes:
                answer["ignored"] = ",".join(sorted({i.kind for i in outcome.ignored}))
            return answer
        if not isinstance(outcome, Accepted):
            log.info("webhook ignored", channel=channel_id, kind=outcome.kind)
            return {"ok": True, "ignored": outcome.kind}
        envelope = self._envelope(outcome)
        await self._publish(channel_id, [envelope])
        return {"ok": True, "event_id": str(envelope.event_id), **(outcome.webhook_reply or {})}

    def _envelope(self, outcome: Accepted) -> Envelope:
        return Envelope.new(
            outcome.payload,
            stream_id=outcome.conversation_key,
            stream_version=0,
            producer=self.producer_name,
            event_id=outcome.event_id,
            occurred_at=outcome.occurred_at,
        )

    async def _publish(self, channel_id: str, envelopes: list[Envelope]) -> None:
        """All of them on the broker, or an error: a provider retry of the whole body then
        republishes those that made it, with the same ids (consumers dedupe them)."""
        by_key: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            by_key.setdefault(envelope.stream_id, []).append(envelope)

        async def in_order(conversation: list[Envelope]) -> None:
            # One conversation's events keep the body's order (a customer's two messages).
            for envelope in conversation:
                await self.publish(INBOUND, envelope)

        try:
            async with asyncio.timeout(self.publish_timeout):
                # Conversations concurrently: the producer batches them into few round trips.
                await asyncio.gather(*(in_order(c) for c in by_key.values()))
        except MessageSizeTooLargeError:
            # Never retryable: 413, not 503, or the provider would retry it forever. Capped
            # fields keep any real update far below the record limit (README: Limits).
            raise ApiError(
                413, "payload_too_large", "the event would exceed the Kafka record limit"
            ) from None
        except (KafkaError, TimeoutError) as exc:
            # The send may still complete later: harmless, the retry has the same event id.
            log.warning("broker did not acknowledge", channel=channel_id, error=repr(exc))
            raise ApiError(
                503, "broker_unavailable", "event not acknowledged by the broker; retry"
            ) from None


async def _read_body(request: web.Request) -> bytes:
    # The raw bytes: some providers sign them (WhatsApp's X-Hub-Signature-256).
    limit = request.app._client_max_size
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes")
    try:
        async with routes.body_deadline(request):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes") from None
