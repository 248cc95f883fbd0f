"""The website visitor's socket: `GET /widget/{channel_id}/socket?token=<visitor token>`.

Why here, in notify: notify is the suite's push service, and every notify replica already reads
every partition of the dialogs topic in a consumer group (and a schema) of its own. So whichever
replica a visitor's socket lands on, that replica sees each reply of the visitor's conversation
and keeps its own transcript of it (`widget_messages`, a projection like `dialog_views`,
rebuilt from the topic): replies reach the socket and a reconnecting visitor gets the
conversation so far, with any number of replicas and no sticky sessions. (ingest has no
database; outbound's replicas share a job table but not the sockets.)

What the visitor sees follows outbound: an operator's reply shows once outbound dispatched it
(`MessageDeliveryUpdated` sent, with the provider id the widget provider gave it); the
browser then reports `delivered` and `read` through ingest's receipts endpoint, and those reach
the dialog's timeline like any provider's receipts. Notes and system messages never show.

Frames to the visitor: `hello`, `history {messages}`, `message {message}`, `edited {message}`,
`deleted {id}`, `typing {name}`, `pong`; a message is `{id, direction: in|out, text, at,
author}`. From the visitor: `ping`, `typing` (relayed to the staff who see the dialog as
`{"type": "customer_typing", "dialog_id"}`). Typing is relayed within the replica that got it,
as operator typing is (see `frames.py`): it is worth nothing seconds later, and it is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.catalog import (
    ChannelType,
    DeliveryStatus,
    DialogMessageEdited,
    Direction,
    MessageAppended,
    MessageDeleted,
    MessageDeliveryUpdated,
)
from openlines.events.envelope import Envelope
from openlines.events.lines import Channel, LinesConfig
from openlines.kit import visitor as tokens
from openlines.kit.http import routes
from openlines.kit.http.errors import ApiError
from openlines.kit.log import get_logger
from openlines.notify import views
from openlines.notify.domain import watchers
from openlines.notify.frames import Throttle
from openlines.notify.hub import SessionHub

log = get_logger(__name__)

TOKEN_EXPIRED = 4001
HISTORY_LIMIT = 500
_SHOWN = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
_COLUMNS = "visible_id, direction, text, sent_at, author_id"

_RECORD = text(
    "INSERT INTO widget_messages (message_id, conversation_key, dialog_id, direction, author_id,"
    " text, visible_id, visible, sent_at) VALUES (:m, :k, :d, :dir, :author, :text, :vid,"
    " :visible, :at) ON CONFLICT (message_id) DO NOTHING RETURNING conversation_key, " + _COLUMNS
)
_SENT = text(
    "UPDATE widget_messages SET visible = true, visible_id = :vid WHERE message_id = :m"
    " AND NOT visible AND direction = 'out' AND NOT deleted RETURNING conversation_key, " + _COLUMNS
)
_EDITED = text(
    "UPDATE widget_messages SET text = :text WHERE message_id = :m AND NOT deleted"
    " RETURNING conversation_key, visible, " + _COLUMNS
)
_DELETED = text(
    "UPDATE widget_messages SET deleted = true WHERE message_id = :m AND NOT deleted"
    " RETURNING conversation_key, visible, visible_id"
)
_HISTORY = text(
    "SELECT " + _COLUMNS + " FROM widget_messages WHERE conversation_key = :k AND visible"
    " AND NOT deleted ORDER BY sent_at DESC, message_id DESC LIMIT :n"
)
_CONVERSATION_OF = text("SELECT conversation_key FROM widget_messages WHERE dialog_id = :d LIMIT 1")
_LATEST_DIALOG = text(
    "SELECT dialog_id FROM widget_messages WHERE conversation_key = :k"
    " ORDER BY sent_at DESC LIMIT 1"
)


class VisitorSocket:
    """One visitor's open socket: a bounded queue and its own writer, as operator sessions."""

    def __init__(self, conversation_key: str, ws: web.WebSocketResponse, queue_size: int):
        self.conversation_key = conversation_key
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._writer = asyncio.create_task(self._write())

    def offer(self, message: str) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # Too slow: close; the browser reconnects and gets the history again.
            task = asyncio.create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )
            task.add_done_callback(lambda _: None)

    async def _write(self) -> None:
        while True:
            message = await self.queue.get()
            try:
                await self.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return

    async def stop(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class VisitorHub:
    def __init__(self, queue_size: int = 200) -> None:
        self.queue_size = queue_size
        self._by_conversation: dict[str, set[VisitorSocket]] = defaultdict(set)

    def open(self, conversation_key: str, ws: web.WebSocketResponse) -> VisitorSocket:
        socket = VisitorSocket(conversation_key, ws, self.queue_size)
        self._by_conversation[conversation_key].add(socket)
        return socket

    async def close(self, socket: VisitorSocket) -> None:
        sockets = self._by_conversation.get(socket.conversation_key)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._by_conversation[socket.conversation_key]
        await socket.stop()

    def push(self, conversation_key: str, message: str) -> int:
        sockets = self._by_conversation.get(conversation_key, set())
        for socket in sockets:
            socket.offer(message)
        return len(sockets)

    async def close_all(self) -> None:
        for sockets in list(self._by_conversation.values()):
            for socket in list(sockets):
                with contextlib.suppress(Exception):
                    await socket.ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutdown")


def _message(row: Any, names: Callable[[str | None], str | None]) -> dict[str, Any]:
    at: datetime = row.sent_at
    return {
        "id": row.visible_id,
        "direction": row.direction,
        "text": row.text,
        "at": at.astimezone(UTC).isoformat(),
        "author": names(row.author_id) if row.direction == "out" else None,
    }


class VisitorProjection:
    """Keeps `widget_messages` and pushes what changed, after commit (as `StreamProjection`)."""

    def __init__(self, hub: VisitorHub, lines: LinesConfig, push_max_age_seconds: float) -> None:
        self.hub = hub
        self.lines = lines
        self.push_max_age_seconds = push_max_age_seconds
        self._pending: dict[UUID, tuple[str, str]] = {}

    def name_of(self, operator_id: str | None) -> str | None:
        operator = self.lines.operator(operator_id) if operator_id else None
        return (operator.name or operator.id) if operator else None

    def _is_widget(self, channel_id: str) -> bool:
        found = self.lines.channel(channel_id)
        return found is not None and found[1].type == ChannelType.WIDGET

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        payload = envelope.payload
        frame: tuple[str, dict[str, Any]] | None = None
        if isinstance(payload, MessageAppended):
            if payload.direction not in (Direction.IN, Direction.OUT):
                return
            if not self._is_widget(payload.channel_id):
                return
            incoming = payload.direction is Direction.IN
            row = (
                await conn.execute(
                    _RECORD,
                    {
                        "m": payload.message_id,
                        "k": payload.conversation_key,
                        "d": payload.dialog_id,
                        "dir": payload.direction.value,
                        "author": payload.author_id,
                        "text": payload.text,
                        "vid": payload.external_message_id if incoming else None,
                        "visible": incoming,
                        "at": payload.sent_at,
                    },
                )
            ).first()
            if row is not None and incoming:
                frame = (row.conversation_key, {"type": "message", "message": self._dump(row)})
        elif isinstance(payload, MessageDeliveryUpdated):
            if payload.status not in _SHOWN:
                return
            vid = payload.provider_message_id or str(payload.message_id)
            row = (await conn.execute(_SENT, {"m": payload.message_id, "vid": vid})).first()
            if row is not None:
                frame = (row.conversation_key, {"type": "message", "message": self._dump(row)})
        elif isinstance(payload, DialogMessageEdited):
            row = (
                await conn.execute(_EDITED, {"m": payload.message_id, "text": payload.text})
            ).first()
            if row is not None and row.visible:
                frame = (row.conversation_key, {"type": "edited", "message": self._dump(row)})
        elif isinstance(payload, MessageDeleted):
            row = (await conn.execute(_DELETED, {"m": payload.message_id})).first()
            if row is not None and row.visible:
                frame = (row.conversation_key, {"type": "deleted", "id": row.visible_id})
        if frame is not None:
            self._pending[envelope.event_id] = (frame[0], json.dumps(frame[1]))

    def _dump(self, row: Any) -> dict[str, Any]:
        return _message(row, self.name_of)

    async def after_commit(self, applied: list[Envelope]) -> None:
        try:
            now = datetime.now(UTC)
            for envelope in applied:
                pending = self._pending.get(envelope.event_id)
                if pending is None:
                    continue
                if (now - envelope.recorded_at).total_seconds() > self.push_max_age_seconds:
                    continue  # history: the transcript has it for the next connect
                self.hub.push(*pending)
        finally:
            self._pending.clear()


class SocketQuery(routes.QueryModel):
    token: str = Field(description="the visitor token (POST /widget/{channel_id}/sessions)")


class VisitorSocketApi:
    def __init__(
        self,
        hub: VisitorHub,
        sessions: SessionHub,
        projection: VisitorProjection,
        engine: Callable[[], AsyncEngine],
        heartbeat_seconds: float,
        throttle_seconds: float,
    ) -> None:
        self.hub = hub
        self.sessions = sessions
        self.projection = projection
        self.lines = projection.lines
        self._engine = engine
        self.heartbeat_seconds = heartbeat_seconds
        self.visitor_throttle = Throttle(throttle_seconds)

    def install(self, app: web.Application) -> None:
        routes.install(app, self)
        app.on_shutdown.append(self._close_all)

    async def _close_all(self, _: web.Application) -> None:
        await self.hub.close_all()

    @routes.get(
        "/widget/{channel_id}/socket",
        summary="A website visitor's live conversation (WebSocket)",
        description=(
            "Upgrade to a WebSocket with `?token=<visitor token>`. Frames: `hello`,"
            " `history {messages}` (the conversation so far), then `message {message}`,"
            " `edited {message}`, `deleted {id}`, `typing {name}`; a message is"
            " `{id, direction: in|out, text, at, author}`. The visitor may send `ping` and"
            " `typing`. Close code 4001: the token expired."
        ),
        query=SocketQuery,
        responses={
            101: "switching to the WebSocket protocol",
            401: "invalid_visitor_token",
            404: "unknown_channel",
            426: "upgrade_required",
        },
        websocket=True,
        auth="none",
    )
    async def socket(self, request: web.Request, *, query: SocketQuery) -> web.StreamResponse:
        channel = self._channel(request.match_info["channel_id"])
        try:
            visitor = tokens.verify(channel, query.token, now=time.time())
        except tokens.InvalidVisitorToken as exc:
            raise ApiError(401, "invalid_visitor_token", f"invalid visitor token: {exc}") from None
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_seconds)
        if not ws.can_prepare(request).ok:
            raise ApiError(426, "upgrade_required", "this endpoint speaks WebSocket only")
        await ws.prepare(request)
        key = visitor.conversation_key
        # Registered before the history is read: a reply in between comes twice at worst, and
        # the browser shows each id once; never not at all.
        socket = self.hub.open(key, ws)
        socket.offer(json.dumps({"type": "hello", "visitor_id": visitor.visitor_id}))
        expiry = asyncio.create_task(self._close_at(ws, visitor.expires_at))
        try:
            socket.offer(json.dumps({"type": "history", "messages": await self._history(key)}))
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._frame(socket, message.data)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("visitor history unavailable", error=repr(exc))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"unavailable")
        finally:
            expiry.cancel()
            await self.hub.close(socket)
        return ws

    def _channel(self, channel_id: str) -> Channel:
        found = self.lines.channel(channel_id)
        if found is None or found[1].type != ChannelType.WIDGET:
            raise ApiError(404, "unknown_channel", f"no widget channel {channel_id!r}")
        return found[1]

    async def _history(self, key: str) -> list[dict[str, Any]]:
        async with self._engine().connect() as conn:
            rows = (await conn.execute(_HISTORY, {"k": key, "n": HISTORY_LIMIT})).all()
        return [self.projection._dump(row) for row in reversed(rows)]

    async def _frame(self, socket: VisitorSocket, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            frame = None
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "ping":
            socket.offer(json.dumps({"type": "pong"}))
        elif kind == "typing":
            await self._customer_typing(socket.conversation_key)
        else:
            socket.offer(
                json.dumps(
                    {"type": "error", "error": {"code": "bad_frame", "message": "ping or typing"}}
                )
            )

    async def _customer_typing(self, key: str) -> None:
        try:
            async with self._engine().connect() as conn:
                dialog_id = await conn.scalar(_LATEST_DIALOG, {"k": key})
                view = await views.load(conn, dialog_id, lock=False) if dialog_id else None
        except (SQLAlchemyError, OSError):
            return  # an indicator lost, nothing more
        if view is None or not self.visitor_throttle.allow(key, dialog_id):
            return
        message = json.dumps({"type": "customer_typing", "dialog_id": str(dialog_id)})
        self.sessions.relay("customer_typing", message, watchers(view), sender="")

    async def operator_typing(self, dialog_id: UUID, operator_id: str) -> None:
        """An operator writes in a dialog (their stream's `typing`): tell its visitor."""
        try:
            async with self._engine().connect() as conn:
                key = await conn.scalar(_CONVERSATION_OF, {"d": dialog_id})
        except (SQLAlchemyError, OSError):
            return
        if key is not None:
            name = self.projection.name_of(operator_id)
            self.hub.push(key, json.dumps({"type": "typing", "name": name}))

    @staticmethod
    async def _close_at(ws: web.WebSocketResponse, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await ws.close(code=TOKEN_EXPIRED, message=b"token expired")
