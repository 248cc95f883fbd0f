"""GET /api/v1/stream: the operator's live events over a WebSocket."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import WSMsgType, web
from pydantic import Field

from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError
from openlines.notify.frames import ClientFrames, error_frame
from openlines.notify.hub import SessionHub

TOKEN_EXPIRED = 4001
"""Close code when the token runs out: the client reconnects with a fresh one."""


async def _close_at_expiry(ws: web.WebSocketResponse, expires_at: float | None) -> None:
    # The token was checked once, at the upgrade: without this, a revoked or expired
    # operator would keep receiving customer messages for as long as the socket lives.
    if expires_at is None:
        return
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    await ws.close(code=TOKEN_EXPIRED, message=b"token expired")


class StreamQuery(routes.QueryModel):
    token: str | None = Field(
        default=None,
        description="the JWT, for browsers that cannot set a header on a WebSocket",
    )


class StreamApi:
    def __init__(
        self,
        hub: SessionHub,
        lines: LinesConfig,
        heartbeat_seconds: float,
        frames: ClientFrames,
    ) -> None:
        self.hub = hub
        self.frames = frames
        self.lines = lines
        self.heartbeat_seconds = heartbeat_seconds

    def install(self, app: web.Application) -> None:
        routes.install(app, self)
        app.on_shutdown.append(self._close_sessions)

    @routes.get(
        "/api/v1/stream",
        summary="The operator's live events (WebSocket)",
        description=(
            "Upgrade to a WebSocket. The first frame is `hello` {operator_id, lines, sees_all,"
            " supervised_lines};"
            " then one JSON frame per event the operator may see (the AsyncAPI document"
            ' describes the events). `{"type": "ping"}` is answered with `pong`.'
            ' `{"type": "typing", "dialog_id"}` (the caller writes in that dialog) reaches the'
            ' other staff who see it as `{"type": "typing", "dialog_id", "operator_id"}`, at'
            " most once per operator and dialog every few seconds; it is not stored. A frame"
            ' that is neither gets `{"type": "error", "error": {"code", "message"}}`'
            " (bad_frame, not_found, not_allowed, unavailable)."
            ' `{"type": "counters"}` is answered with `{"type": "counters", "unassigned",'
            ' "unassigned_display", "unanswered", ..., "mine_active_display"}` (as'
            " GET /api/v1/counters), pushed again whenever they change. Close"
            " code 4001: the token expired."
        ),
        query=StreamQuery,
        responses={101: "switching to the WebSocket protocol", 426: "upgrade_required"},
        websocket=True,
    )
    async def stream(self, request: web.Request, *, query: StreamQuery) -> web.StreamResponse:
        # Authenticate before the upgrade, so a refused client gets a JSON 401. Browsers cannot
        # set headers on a WebSocket: this route (and only this) also takes ?token=.
        principal = await require_principal(request, query_token=True)
        scope = Scope.of(principal, self.lines)
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_seconds)
        if not ws.can_prepare(request).ok:
            raise ApiError(426, "upgrade_required", "this endpoint speaks WebSocket only")
        await ws.prepare(request)
        session = self.hub.open(scope, ws)
        # Queued first, in the same step as the registration: once a client reads `hello`,
        # nothing pushed from then on is missed. (All writes go through the session's queue.)
        session.offer(
            json.dumps(
                {
                    "type": "hello",
                    "operator_id": scope.operator_id,
                    "lines": sorted(scope.member_lines),
                    "sees_all": scope.sees_all_lines,
                    "supervised_lines": None
                    if scope.supervised_lines is None
                    else sorted(scope.supervised_lines),
                }
            )
        )
        expiry = asyncio.create_task(_close_at_expiry(ws, principal.expires_at))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self.frames.handle(session, message.data)
                elif message.type is WSMsgType.BINARY:
                    session.offer(error_frame("bad_frame", "frames are JSON text"))
        finally:
            expiry.cancel()
            await self.hub.close(session)
        return ws

    async def _close_sessions(self, _: web.Application) -> None:
        await self.hub.close_all()
