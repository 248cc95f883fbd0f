"""The widget's public side in ingest: the embeddable script and the visitor endpoints.

- `GET /widget/{channel_id}.js`: the chat box (plain JavaScript, no build step);
- `GET /widget/demo.html`: a page that embeds it (the demo at `make run`);
- `POST /widget/{channel_id}/sessions`: a new visitor and their token (one conversation);
- `POST /widget/{channel_id}/messages`: the visitor writes (Bearer visitor token);
- `POST /widget/{channel_id}/receipts`: the visitor's browser got / showed our replies.

The browser holds no secret: only a visitor token (`openlines.kit.visitor`), which names one
conversation; the conversation key of every event comes from the token, never from the body,
so a visitor can neither write into nor acknowledge messages of another conversation. Each
visitor (and each address asking for sessions) is rate limited (429 `rate_limited`), each body
is size limited (413 `payload_too_large`). The limits are per ingest instance, in memory: with N
instances behind a balancer a visitor gets at most N times the rate, which bounds abuse just
as well, without a shared store on the hot path. The live side (replies, typing) is notify's
visitor socket, `GET /widget/{channel_id}/socket`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Literal, TypeVar
from uuid import UUID

import pydantic_core
from aiohttp import web
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from openlines.events import INBOUND, Envelope, deterministic_event_id
from openlines.events.catalog import ChannelType, DeliveryReceiptReceived, DeliveryStatus
from openlines.events.lines import Channel, Line, LinesConfig, WidgetSettings
from openlines.ingest.domain import Accepted, InboundPayload, InvalidUpdate
from openlines.ingest.widget import WidgetMessage, received
from openlines.kit import visitor as tokens
from openlines.kit.http import routes
from openlines.kit.http.auth import bearer_token
from openlines.kit.http.errors import ApiError
from openlines.kit.log import get_logger

log = get_logger(__name__)

Publish = Callable[[str, Envelope], Awaitable[None]]

BodyT = TypeVar("BodyT", bound=routes.StrictModel)

_WIDGET_PREFIX = "/widget/"
_DEFAULTS = WidgetSettings()


class RateLimiter:
    """A token bucket per key: `per_minute` requests, refilled evenly. In memory, bounded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000):
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, per_minute: int) -> float:
        """0 when allowed (and counted); otherwise the seconds until the next one is."""
        now = self.clock()
        rate = per_minute / 60.0
        tokens_left, at = self._buckets.get(key, (float(per_minute), now))
        tokens_left = min(float(per_minute), tokens_left + (now - at) * rate)
        if tokens_left < 1.0:
            self._buckets[key] = (tokens_left, now)
            return (1.0 - tokens_left) / rate
        self._buckets[key] = (tokens_left - 1.0, now)
        if len(self._buckets) > self.max_keys:
            # Forget the keys that are full again: they behave as new ones.
            self._buckets = {
                k: (t, a)
                for k, (t, a) in self._buckets.items()
                if t + (now - a) * rate < per_minute
            }
        return 0.0


class SessionAnswer(BaseModel):
    visitor_id: str
    token: str
    """Bearer token for this conversation's messages, receipts and socket."""
    expires_at: datetime
    socket_path: str


class VisitorText(routes.StrictModel):
    """What the visitor writes."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    client_message_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    """The browser's id for the message: a retry of the same id is the same message."""
    name: Annotated[str, StringConstraints(max_length=128)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    page_url: Annotated[str, StringConstraints(max_length=2048)] | None = None


class MessageAnswer(BaseModel):
    ok: bool
    event_id: UUID
    message_id: str


class Receipts(routes.StrictModel):
    status: Literal["delivered", "read"]
    message_ids: tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...] = (
        Field(min_length=1, max_length=50)
    )
    """The ids of operator replies as the socket gave them."""


class ReceiptsAnswer(BaseModel):
    ok: bool
    accepted: int


_ERRORS = {
    401: "invalid_visitor_token: missing, expired, or of another channel",
    403: "origin_not_allowed: the page's origin is not in the channel's allowed_origins",
    404: "unknown_channel: no widget channel of that id",
    413: "payload_too_large",
    422: "invalid_body",
    429: "rate_limited: details.retry_after_seconds",
    503: "broker_unavailable: not acknowledged by the broker; retry",
}


class VisitorApi:
    def __init__(
        self,
        *,
        lines: LinesConfig,
        publish: Publish,
        publish_timeout: float,
        producer_name: str,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.lines = lines
        self.publish = publish
        self.publish_timeout = publish_timeout
        self.producer_name = producer_name
        self.limiter = limiter or RateLimiter()
        self._script = resources.files("openlines.ingest").joinpath("static/widget.js")
        self._demo = resources.files("openlines.ingest").joinpath("static/demo.html")

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._cors)
        routes.install(app, self)

    # -- the script and the demo page ----------------------------------------------------------

    @routes.get(
        "/widget/demo.html",
        summary="A page with the widget of the first widget channel (the local demo)",
        responses={200: "text/html", 404: "unknown_channel: no widget channel configured"},
        auth="none",
        content_type="text/html",
    )
    async def demo_page(self, request: web.Request) -> web.Response:
        channel = next(
            (c for line in self.lines.lines for c in line.channels if c.type == "widget"), None
        )
        if channel is None:
            raise ApiError(404, "unknown_channel", "no widget channel is configured")
        html = self._demo.read_text().replace("{{CHANNEL_ID}}", channel.id)
        return web.Response(text=html, content_type="text/html")

    @routes.get(
        "/widget/{channel_id}.js",
        summary="The embeddable chat box: one <script> tag",
        description=(
            'Add `<script src="https://<openlines>/widget/<channel_id>.js" async></script>` to'
            " a page: it draws a chat button, opens a chat box, and talks to the visitor"
            " endpoints and socket of the same origin as the script."
        ),
        responses={200: "application/javascript", 404: "unknown_channel"},
        auth="none",
        content_type="application/javascript",
    )
    async def script(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        settings = channel.widget or _DEFAULTS
        config = json.dumps(
            {"channel": channel.id, "title": settings.title, "greeting": settings.greeting}
        ).replace("</", "<\\/")
        body = self._script.read_text().replace("/*{{CONFIG}}*/ null", config)
        return web.Response(
            text=body,
            content_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    # -- visitor endpoints -------------------------------------------------------------------

    @routes.post(
        "/widget/{channel_id}/sessions",
        summary="A new website visitor: their id and a token for their conversation",
        description=(
            "No body. The visitor id is chosen by the server; the token (a JWT signed with a"
            " key derived from the channel's secret) opens this one conversation only. The"
            " browser keeps it (localStorage) and comes back to the same conversation."
        ),
        responses={201: SessionAnswer, **_ERRORS},
        auth="none",
    )
    async def new_session(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        settings = self._guard(request, channel)
        self._limit(
            f"session:{channel.id}:{_client_address(request)}", settings.sessions_per_minute
        )
        token, visitor = tokens.issue(channel, tokens.new_visitor_id(), settings.token_ttl_seconds)
        answer = SessionAnswer(
            visitor_id=visitor.visitor_id,
            token=token,
            expires_at=datetime.fromtimestamp(visitor.expires_at, UTC),
            socket_path=f"/widget/{channel.id}/socket",
        )
        return web.json_response(answer.model_dump(mode="json"), status=201)

    @routes.post(
        "/widget/{channel_id}/messages",
        summary="The visitor writes (Authorization: Bearer <visitor token>)",
        body=VisitorText,
        body_read_by_handler=True,
        responses={202: MessageAnswer, 400: "malformed_json", **_ERRORS},
        auth="none",
    )
    async def write(self, request: web.Request) -> web.Response:
        line, channel = self._channel(request)
        settings = self._guard(request, channel)
        visitor = self._visitor(request, channel)
        self._limit(f"visitor:{visitor.conversation_key}", settings.messages_per_minute)
        body = await self._body(request, VisitorText, settings)
        message = WidgetMessage(
            visitor_id=visitor.visitor_id,
            name=body.name,
            email=body.email,
            text=body.text,
            page_url=body.page_url,
            message_id=body.client_message_id,
        )
        try:
            outcome = received(message, line, channel, sent_at=datetime.now(UTC))
        except InvalidUpdate as exc:
            raise ApiError(422, "invalid_body", str(exc)) from None
        assert isinstance(outcome, Accepted)
        event_id = await self._publish(outcome.payload, outcome.event_id, outcome.occurred_at)
        answer = MessageAnswer(ok=True, event_id=event_id, message_id=body.client_message_id)
        return web.json_response(answer.model_dump(mode="json"), status=202)

    @routes.post(
        "/widget/{channel_id}/receipts",
        summary="The visitor's browser received (delivered) or showed (read) our replies",
        body=Receipts,
        body_read_by_handler=True,
        responses={202: ReceiptsAnswer, 400: "malformed_json", **_ERRORS},
        auth="none",
    )
    async def receipts(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        settings = self._guard(request, channel)
        visitor = self._visitor(request, channel)
        # A bucket of their own: acknowledging replies never holds back the visitor's writing.
        self._limit(f"receipts:{visitor.conversation_key}", settings.messages_per_minute)
        body = await self._body(request, Receipts, settings)
        now = datetime.now(UTC)
        status = DeliveryStatus(body.status)
        for message_id in dict.fromkeys(body.message_ids):
            receipt = DeliveryReceiptReceived(
                channel_id=channel.id,
                channel_type=ChannelType.WIDGET,
                conversation_key=visitor.conversation_key,
                provider_message_id=message_id,
                status=status,
                at=now,
            )
            # One receipt per message and status: the browser may say it more than once.
            event_id = deterministic_event_id(
                channel.id, "widget-receipt", visitor.conversation_key, message_id, body.status
            )
            await self._publish(receipt, event_id, now)
        answer = ReceiptsAnswer(ok=True, accepted=len(set(body.message_ids)))
        return web.json_response(answer.model_dump(), status=202)

    # -- helpers ---------------------------------------------------------------------------------

    def _channel(self, request: web.Request) -> tuple[Line, Channel]:
        channel_id = request.match_info["channel_id"]
        found = self.lines.channel(channel_id)
        if found is None or found[1].type != ChannelType.WIDGET:
            raise ApiError(404, "unknown_channel", f"no widget channel {channel_id!r}")
        return found

    def _guard(self, request: web.Request, channel: Channel) -> WidgetSettings:
        settings = channel.widget or _DEFAULTS
        origin = request.headers.get("Origin")
        if origin and settings.allowed_origins and origin not in settings.allowed_origins:
            raise ApiError(403, "origin_not_allowed", f"origin {origin!r} may not embed this")
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            raise ApiError(
                413, "payload_too_large", f"body exceeds {settings.max_body_bytes} bytes"
            )
        return settings

    def _visitor(self, request: web.Request, channel: Channel) -> tokens.Visitor:
        token = bearer_token(request)
        if token is None:
            raise ApiError(401, "invalid_visitor_token", "missing bearer visitor token")
        try:
            return tokens.verify(channel, token, now=time.time())
        except tokens.InvalidVisitorToken as exc:
            raise ApiError(401, "invalid_visitor_token", f"invalid visitor token: {exc}") from None

    def _limit(self, key: str, per_minute: int) -> None:
        wait = self.limiter.take(key, per_minute)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "too many requests; slow down",
                retry_after_seconds=round(wait, 1),
            )

    async def _body(
        self, request: web.Request, model: type[BodyT], settings: WidgetSettings
    ) -> BodyT:
        # Chunked bodies have no Content-Length: count what arrives.
        raw = bytearray()
        async with routes.body_deadline(request):
            async for chunk in request.content.iter_chunked(4096):
                raw += chunk
                if len(raw) > settings.max_body_bytes:
                    raise ApiError(
                        413, "payload_too_large", f"body exceeds {settings.max_body_bytes} bytes"
                    )
        try:
            data = pydantic_core.from_json(bytes(raw), allow_inf_nan=False)
        except ValueError as exc:
            raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
        if routes.without_nul(data) != data:
            raise ApiError(400, "invalid_text", "strings must not contain NUL (U+0000)")
        try:
            return model.model_validate_json(bytes(raw), strict=True)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in error["loc"]) or "body"
            raise ApiError(422, "invalid_body", f"{where}: {error['msg']}") from None

    async def _publish(
        self, payload: InboundPayload, event_id: UUID, occurred_at: datetime
    ) -> UUID:
        envelope = Envelope.new(
            payload,
            stream_id=payload.conversation_key,
            stream_version=0,
            producer=self.producer_name,
            event_id=event_id,
            occurred_at=occurred_at,
        )
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publish(INBOUND, envelope)
        except MessageSizeTooLargeError:
            raise ApiError(413, "payload_too_large", "the event exceeds the record limit") from None
        except (KafkaError, TimeoutError) as exc:
            log.warning("broker did not acknowledge a visitor event", error=repr(exc))
            raise ApiError(503, "broker_unavailable", "not acknowledged; retry") from None
        return envelope.event_id

    # -- CORS: sites embed the widget from their own origin ---------------------------------

    @web.middleware
    async def _cors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(_WIDGET_PREFIX):
            return await handler(request)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin:
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if origin and self._origin_allowed(request.path, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    def _origin_allowed(self, path: str, origin: str) -> bool:
        channel_id = path[len(_WIDGET_PREFIX) :].split("/", 1)[0].removesuffix(".js")
        found = self.lines.channel(channel_id)
        if found is None or found[1].type != ChannelType.WIDGET:
            return False
        settings = found[1].widget or _DEFAULTS
        return not settings.allowed_origins or origin in settings.allowed_origins


def _client_address(request: web.Request) -> str:
    # The gateway / Ingress appends the peer it saw: the last entry is the one we trust.
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.remote or "unknown"
