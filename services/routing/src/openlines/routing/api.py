"""Operator API: presence, operators with their load, queues."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.catalog import PresenceStatus
from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.routing import domain, store
from openlines.routing.router import Router


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    router: Router


CONTEXT = web.AppKey("routing", ApiContext)


class PresenceBody(routes.StrictModel):
    status: PresenceStatus


class PresenceView(BaseModel):
    """The operator's new presence and the one it replaced."""

    operator_id: str
    status: PresenceStatus
    previous_status: PresenceStatus | None


class OperatorView(BaseModel):
    operator_id: str
    status: PresenceStatus
    status_changed_at: datetime | None
    active_dialogs: int
    reserved_dialogs: int
    max_dialogs: int
    line_ids: list[str]


class OperatorsView(BaseModel):
    """The operators the caller may see, with their load."""

    operators: list[OperatorView]


class QueueView(BaseModel):
    line_id: str
    waiting: int
    oldest_waiting_since: datetime | None
    oldest_wait_seconds: int


class QueuesView(BaseModel):
    """The waiting queue of each line the caller may see."""

    lines: list[QueueView]


def install(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    routes.install(app, sys.modules[__name__])


async def _scope(request: web.Request) -> Scope:
    """The caller's reach, per the suite's one access policy (`openlines.kit.access`)."""
    return Scope.of(await require_principal(request), request.app[CONTEXT].lines)


def _line_ids(ctx: ApiContext, operator_id: str) -> list[str]:
    return [line.id for line in ctx.lines.lines_of(operator_id)]


@routes.put(
    "/api/v1/operators/{operator_id}/presence",
    summary="Set an operator's presence (their own; a supervisor: their lines' operators)",
    body=PresenceBody,
    responses={200: PresenceView, 403: "forbidden", 404: "not_found: no such operator"},
)
async def put_presence(request: web.Request, *, body: PresenceBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await _scope(request)
    operator_id = request.match_info["operator_id"]
    if not scope.may_manage(operator_id, _line_ids(ctx, operator_id)):
        raise ApiError(
            403,
            "forbidden",
            "operators set only their own presence; supervisors that of their lines' operators",
        )
    if ctx.lines.operator(operator_id) is None:
        raise not_found("operator")
    status = body.status
    async with ctx.engine.begin() as conn:
        previous = await ctx.router.set_presence(conn, operator_id, status)
    return web.json_response(
        {
            "operator_id": operator_id,
            "status": status.value,
            "previous_status": previous.value if previous is not None else None,
        }
    )


@routes.get("/api/v1/operators", summary="Operators and their load", responses={200: OperatorsView})
async def get_operators(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await _scope(request)
    wanted = {
        op.id for op in ctx.lines.operators if scope.sees_operator(op.id, _line_ids(ctx, op.id))
    }
    async with ctx.engine.connect() as conn:
        rows = await store.list_operators(conn, wanted)
    return web.json_response(
        {
            "operators": [
                {
                    "operator_id": row.operator_id,
                    "status": row.status,
                    "status_changed_at": _iso(row.status_changed_at),
                    "active_dialogs": row.active,
                    "reserved_dialogs": row.reserved,
                    "max_dialogs": row.max_dialogs,
                    "line_ids": [line.id for line in ctx.lines.lines_of(row.operator_id)],
                }
                for row in rows
            ]
        }
    )


@routes.get("/api/v1/queues", summary="Waiting dialogs per line", responses={200: QueuesView})
async def get_queues(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await _scope(request)
    line_ids = scope.queue_lines(line.id for line in ctx.lines.lines)
    async with ctx.engine.connect() as conn:
        stats = await store.queue_stats(conn, line_ids)
    now = datetime.now(UTC)
    return web.json_response(
        {
            "lines": [
                {
                    "line_id": line_id,
                    "waiting": stats[line_id].waiting,
                    "oldest_waiting_since": _iso(stats[line_id].oldest_waiting_since),
                    "oldest_wait_seconds": domain.wait_seconds(
                        stats[line_id].oldest_waiting_since, now
                    ),
                }
                for line_id in line_ids
            ]
        }
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
