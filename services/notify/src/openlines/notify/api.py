"""GET /api/v1/stream: the operator's live events over a WebSocket."""

from __future__ import annotations

import json

from aiohttp import WSMsgType, web

from openlines.kit.http.auth import Principal, require_principal
from openlines.kit.http.errors import ApiError
from openlines.kit.lines import LinesConfig
from openlines.notify.domain import Viewer
from openlines.notify.hub import SessionHub

_PONG = json.dumps({"type": "pong"})


def _is_ping(data: str) -> bool:
    """Application-level keepalive for clients that cannot send WebSocket pings."""
    try:
        message = json.loads(data)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


def viewer_of(principal: Principal, lines: LinesConfig) -> Viewer:
    """The operator's lines from the config, narrowed by the token's `lines` claim if any."""
    line_ids = frozenset(line.id for line in lines.lines_of(principal.operator_id))
    if principal.lines is not None:
        line_ids &= principal.lines
    return Viewer(principal.operator_id, line_ids, sees_all=principal.is_supervisor)


class StreamApi:
    def __init__(self, hub: SessionHub, lines: LinesConfig, heartbeat_seconds: float) -> None:
        self.hub = hub
        self.lines = lines
        self.heartbeat_seconds = heartbeat_seconds

    def install(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/stream", self.stream)
        app.on_shutdown.append(self._close_sessions)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        # Authenticate before the upgrade, so a refused client gets a JSON 401.
        viewer = viewer_of(await require_principal(request), self.lines)
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_seconds)
        if not ws.can_prepare(request).ok:
            raise ApiError(426, "upgrade_required", "this endpoint speaks WebSocket only")
        await ws.prepare(request)
        session = self.hub.open(viewer, ws)
        # Queued first, in the same step as the registration: once a client reads `hello`,
        # nothing pushed from then on is missed. (All writes go through the session's queue.)
        session.offer(
            json.dumps(
                {
                    "type": "hello",
                    "operator_id": viewer.operator_id,
                    "lines": sorted(viewer.lines),
                    "sees_all": viewer.sees_all,
                }
            )
        )
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT and _is_ping(message.data):
                    session.offer(_PONG)
        finally:
            await self.hub.close(session)
        return ws

    async def _close_sessions(self, _: web.Application) -> None:
        await self.hub.close_all()
