"""Operator API: presence, operators with their load, queues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit.access import Scope
from openlines.kit.http.app import read_json
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.kit.lines import LinesConfig
from openlines.routing import domain, store
from openlines.routing.router import Router


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    router: Router


CONTEXT = web.AppKey("routing", ApiContext)


def setup(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    app.router.add_put("/api/v1/operators/{operator_id}/presence", put_presence)
    app.router.add_get("/api/v1/operators", get_operators)
    app.router.add_get("/api/v1/queues", get_queues)


async def _scope(request: web.Request) -> Scope:
    """The caller's reach, per the suite's one access policy (`openlines.kit.access`)."""
    return Scope.of(await require_principal(request), request.app[CONTEXT].lines)


def _line_ids(ctx: ApiContext, operator_id: str) -> list[str]:
    return [line.id for line in ctx.lines.lines_of(operator_id)]


async def put_presence(request: web.Request) -> web.Response:
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
    body = await read_json(request)
    status = domain.parse_presence(body.get("status") if isinstance(body, dict) else None)
    if status is None:
        raise ApiError(400, "invalid_status", 'status must be one of "online", "away", "offline"')
    async with ctx.engine.begin() as conn:
        previous = await ctx.router.set_presence(conn, operator_id, status)
    return web.json_response(
        {
            "operator_id": operator_id,
            "status": status.value,
            "previous_status": previous.value if previous is not None else None,
        }
    )


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
