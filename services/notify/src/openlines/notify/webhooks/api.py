"""`/api/v1/webhooks...`: webhook subscriptions, their dead-letter list and redelivery. The chat
admin only (`Scope.may_manage_webhooks`, the suite's access policy)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.limits import ID_MAX
from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.notify.webhooks import store
from openlines.notify.webhooks.addresses import ReceiverAddresses
from openlines.notify.webhooks.domain import ALL_EVENTS, EVENT_TYPES, UrlRefused

T = TypeVar("T")

WEBHOOKS = "/api/v1/webhooks"
URL_MAX = 2048
LineId = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
EventType = Annotated[str, Field(min_length=1, max_length=100)]
Secret = Annotated[str, Field(min_length=16, max_length=256)]
_TYPES_DOC = 'event type names (`DialogOpened`, ...), or `["*"]` for every event'
_LINES_DOC = "only events of these lines; empty (the default): every line, and events of none"


class WebhookBody(routes.StrictModel):
    """A new subscription; the secret is generated when not given, and shown only once."""

    url: str = Field(min_length=1, max_length=URL_MAX, description="http(s) receiver")
    event_types: list[EventType] = Field(min_length=1, max_length=100, description=_TYPES_DOC)
    lines: list[LineId] = Field(default_factory=list, max_length=64, description=_LINES_DOC)
    secret: Secret | None = Field(default=None, description="16 to 256 characters")


class WebhookPatch(routes.StrictModel):
    """The fields to change; `"enabled": true` resumes a subscription disabled by a 410."""

    url: str | None = Field(default=None, min_length=1, max_length=URL_MAX)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=100)
    lines: list[LineId] | None = Field(default=None, max_length=64)
    secret: Secret | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: may not be null")
        return self


DeliveryStatus = Literal["pending", "delivering", "delivered", "failed"]


class DeliveriesQuery(routes.QueryModel):
    status: DeliveryStatus | None = Field(default=None, description="failed: the dead letters")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class WebhookView(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    lines: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="`gone`: the receiver answered 410")
    created_by: str
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookView):
    secret: str = Field(description="signs every delivery; shown this once")


class WebhookList(BaseModel):
    items: list[WebhookView]


class DeliveryView(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="also the X-Openlines-Delivery header")
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status: int | None = Field(description="the receiver's last HTTP status, if any")
    last_error: str | None
    next_attempt_at: datetime | None
    give_up_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeliveryPage(BaseModel):
    """Newest first; `next_cursor` fetches the next page."""

    items: list[DeliveryView]
    next_cursor: str | None


_NOT_FOUND = "not_found: no such webhook (or not one of the caller's lines)"
_FORBIDDEN = "not_allowed: webhooks are the chat admin's"
_SAVE = (
    "invalid_body, invalid_url, url_not_allowed (a private or loopback address),"
    " unresolvable_host, unknown_event_type, unknown_line"
)


def webhook_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "url": row.url,
        "event_types": list(row.event_types),
        "lines": list(row.lines),
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def delivery_json(row: Row) -> dict[str, Any]:
    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row.id),
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "status": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": at(row.next_attempt_at) if row.state == "pending" else None,
        "give_up_at": row.give_up_at.isoformat(),
        "delivered_at": at(row.delivered_at),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhooksApi:
    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        lines: LinesConfig,
        addresses: ReceiverAddresses,
        retry_for_seconds: float,
        wake: Callable[[], None],
    ) -> None:
        self._engine = engine  # a getter: the runtime creates the engine at start
        self.lines = lines
        self.addresses = addresses
        self.retry_for_seconds = retry_for_seconds
        self._wake = wake

    def install(self, app: web.Application) -> None:
        routes.install(app, self)

    @routes.get(
        WEBHOOKS,
        summary="The webhook subscriptions (chat admins)",
        tags=("webhooks",),
        responses={200: WebhookList, 403: _FORBIDDEN},
    )
    async def list_webhooks(self, request: web.Request) -> web.Response:
        scope = await self._admin(request)
        async with self._engine().connect() as conn:
            rows = await store.list_subscriptions(conn)
        items = [webhook_json(r) for r in rows if scope.may_manage_webhooks(r.lines)]
        return web.json_response({"items": items})

    @routes.post(
        WEBHOOKS,
        summary="Subscribe a receiver to events (chat admins); the secret is shown once",
        tags=("webhooks",),
        body=WebhookBody,
        responses={201: WebhookCreated, 403: _FORBIDDEN, 422: _SAVE},
    )
    async def create_webhook(self, request: web.Request, *, body: WebhookBody) -> web.Response:
        scope = await self._admin(request)
        lines = self._known_lines(body.lines)
        self._require(scope, lines)
        values = {
            "id": uuid.uuid4(),
            "url": await self._checked_url(body.url),
            "event_types": _known_types(body.event_types),
            "lines": lines,
            "secret": body.secret or new_secret(),
            "created_by": scope.operator_id,
        }
        row = await self._write(lambda conn: store.create_subscription(conn, values))
        return web.json_response({**webhook_json(row), "secret": values["secret"]}, status=201)

    @routes.get(
        WEBHOOKS + "/{id}",
        summary="One webhook subscription (without its secret)",
        tags=("webhooks",),
        responses={200: WebhookView, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    async def get_webhook(self, request: web.Request) -> web.Response:
        scope = await self._admin(request)
        async with self._engine().connect() as conn:
            row = await self._visible(conn, scope, _webhook_id(request))
        return web.json_response(webhook_json(row))

    @routes.patch(
        WEBHOOKS + "/{id}",
        summary="Change a webhook subscription (chat admins)",
        tags=("webhooks",),
        body=WebhookPatch,
        responses={200: WebhookView, 403: _FORBIDDEN, 404: _NOT_FOUND, 422: _SAVE},
    )
    async def update_webhook(self, request: web.Request, *, body: WebhookPatch) -> web.Response:
        scope = await self._admin(request)
        webhook_id = _webhook_id(request)
        changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
        if body.lines is not None:
            changes["lines"] = self._known_lines(body.lines)
            self._require(scope, changes["lines"])
        if body.event_types is not None:
            changes["event_types"] = _known_types(body.event_types)
        if body.url is not None:
            changes["url"] = await self._checked_url(body.url)

        async def work(conn: AsyncConnection) -> Row | None:
            await self._visible(conn, scope, webhook_id, lock=True)
            return await store.update_subscription(conn, webhook_id, changes)

        row = await self._write(work)
        if row is None:
            raise not_found("webhook")
        if body.enabled:
            self._wake()  # what waited while it was disabled may go now
        return web.json_response(webhook_json(row))

    @routes.delete(
        WEBHOOKS + "/{id}",
        summary="Delete a webhook subscription and its deliveries (chat admins)",
        tags=("webhooks",),
        responses={204: None, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    async def delete_webhook(self, request: web.Request) -> web.Response:
        scope = await self._admin(request)
        webhook_id = _webhook_id(request)

        async def work(conn: AsyncConnection) -> None:
            await self._visible(conn, scope, webhook_id, lock=True)
            await store.delete_subscription(conn, webhook_id)

        await self._write(work)
        return web.Response(status=204)

    @routes.get(
        WEBHOOKS + "/{id}/deliveries",
        summary="A subscription's deliveries; `?status=failed` is its dead-letter list",
        tags=("webhooks",),
        query=DeliveriesQuery,
        responses={
            200: DeliveryPage,
            400: "invalid_query, invalid_cursor",
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    async def list_deliveries(
        self, request: web.Request, *, query: DeliveriesQuery
    ) -> web.Response:
        scope = await self._admin(request)
        before = _cursor(query.cursor)
        async with self._engine().connect() as conn:
            webhook = await self._visible(conn, scope, _webhook_id(request))
            rows = await store.list_deliveries(
                conn, webhook.id, query.status, before, query.limit + 1
            )
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return web.json_response(
            {
                "items": [delivery_json(r) for r in page],
                "next_cursor": str(page[-1].seq) if more else None,
            }
        )

    @routes.post(
        WEBHOOKS + "/{id}/deliveries/{delivery_id}/redeliver",
        summary="Send a delivery again (a dead letter, or one delivered), due now",
        tags=("webhooks",),
        responses={
            202: DeliveryView,
            403: _FORBIDDEN,
            404: "not_found: no such webhook or delivery",
            409: "delivery_in_flight: being sent right now; subscription_disabled: enable it first",
        },
    )
    async def redeliver(self, request: web.Request) -> web.Response:
        scope = await self._admin(request)
        webhook_id = _webhook_id(request)
        try:
            delivery_id = uuid.UUID(request.match_info["delivery_id"])
        except ValueError:
            raise not_found("delivery") from None

        async def work(conn: AsyncConnection) -> Row:
            webhook = await self._visible(conn, scope, webhook_id)
            if not webhook.enabled:
                raise ApiError(
                    409,
                    "subscription_disabled",
                    'the webhook is disabled: PATCH it with {"enabled": true} first',
                )
            row = await store.redeliver(conn, webhook_id, delivery_id, self.retry_for_seconds)
            if row is not None:
                return row
            if await store.get_delivery(conn, webhook_id, delivery_id) is None:
                raise not_found("delivery")
            raise ApiError(409, "delivery_in_flight", "the delivery is being sent right now")

        row = await self._write(work)
        self._wake()
        return web.json_response(delivery_json(row), status=202)

    # -- helpers ----------------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> Scope:
        scope = Scope.of(await require_principal(request), self.lines)
        if not scope.manages_webhooks:
            raise ApiError(403, "not_allowed", "webhooks are managed by the chat admin only")
        return scope

    @staticmethod
    def _require(scope: Scope, lines: list[str]) -> None:
        if not scope.may_manage_webhooks(lines):
            raise ApiError(
                403, "not_allowed", "your token does not reach every line of this webhook"
            )

    async def _visible(
        self, conn: AsyncConnection, scope: Scope, webhook_id: uuid.UUID, *, lock: bool = False
    ) -> Row:
        row = await store.get_subscription(conn, webhook_id, lock=lock)
        if row is None or not scope.may_manage_webhooks(row.lines):
            raise not_found("webhook")
        return row

    def _known_lines(self, lines: list[str]) -> list[str]:
        unknown = sorted({line for line in lines if self.lines.line(line) is None})
        if unknown:
            raise ApiError(422, "unknown_line", f"unknown lines: {', '.join(unknown)}")
        return list(dict.fromkeys(lines))

    async def _checked_url(self, url: str) -> str:
        try:
            await self.addresses.check_url(url)
        except UrlRefused as exc:
            raise ApiError(422, exc.code, str(exc)) from None
        return url

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._engine().begin() as conn:
            return await work(conn)


def _known_types(types: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(types))
    if ALL_EVENTS in wanted:
        if len(wanted) > 1:
            raise ApiError(422, "unknown_event_type", 'event_types: "*" stands alone')
        return wanted
    unknown = sorted(set(wanted) - EVENT_TYPES)
    if unknown:
        raise ApiError(422, "unknown_event_type", f"unknown event types: {', '.join(unknown)}")
    return wanted


def _webhook_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise not_found("webhook") from None


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise ApiError(400, "invalid_cursor", "cursor: not one this API gave")
    return int(value)
