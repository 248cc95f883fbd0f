"""Reading: per-operator read marks (`read`, `read-all`), the caller's counters, and the
customer's history (earlier dialogs and their timelines).

Reading changes nothing anyone else sees: a `DialogRead` names its operator, and everything
here needs only that the caller may read the dialog (`require_readable`), not act on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import queries
from openlines.dialogs.access import Viewer, facts, require_readable
from openlines.dialogs.api.base import (
    BASE,
    DIALOG_REFUSALS,
    SAME_ID,
    ApiBase,
    dialog_id_of,
    links,
    path_uuid,
)
from openlines.dialogs.domain import Dialog, Load
from openlines.dialogs.tables import dialogs
from openlines.dialogs.views import (
    CountersView,
    DialogView,
    HistoryView,
    ReadAllView,
    TimelineView,
    history_item_json,
    message_json,
)
from openlines.events.envelope import EventPayload
from openlines.kit.counters import counters_json
from openlines.kit.http import routes
from openlines.kit.http.errors import not_found

READ_ALL_BATCH = 100
"""Dialogs marked read per transaction by `read-all` (each is its own stream)."""
HISTORY_LIMIT = 100


class HistoryParams(routes.QueryModel):
    limit: int = Field(default=HISTORY_LIMIT, ge=1, le=HISTORY_LIMIT)


class ReadingEndpoints(ApiBase):
    @routes.post(
        BASE + "/{id}/read",
        summary="Mark the dialog read for the caller (only the caller's unread count changes)",
        responses={200: DialogView, 404: DIALOG_REFUSALS[404], 503: DIALOG_REFUSALS[503]},
        links=links(SAME_ID, History="history"),
    )
    async def read(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.mark_read(viewer.operator_id)

        return await self.act(request, decide, require=require_readable)

    @routes.post(
        BASE + "/read-all",
        summary="Mark every dialog the caller may list read, for the caller",
        responses={200: ReadAllView, 503: DIALOG_REFUSALS[503]},
    )
    async def read_all(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        me = viewer.operator_id
        async with self._engine().connect() as conn:
            unread = await conn.execute(
                select(dialogs.c.id).where(queries.visible_to(viewer), queries.WORK.unread(me))
            )
            ids = list(unread.scalars())

        def decide(dialog: Dialog) -> Sequence[EventPayload]:
            # Decided on the stream itself: a dialog that left the caller's list meanwhile
            # is skipped, not read.
            if not (dialog.exists and viewer.can_see(facts(dialog))):
                return []
            return dialog.mark_read(me)

        read = 0
        for start in range(0, len(ids), READ_ALL_BATCH):
            batch = ids[start : start + READ_ALL_BATCH]

            async def work(conn: AsyncConnection, batch: list[uuid.UUID] = batch) -> int:
                for dialog_id in batch:
                    await self.writer.execute(conn, dialog_id, decide)
                # Counted after the writes, in their transaction (a retry counts again).
                still = await conn.execute(
                    select(dialogs.c.id).where(dialogs.c.id.in_(batch), queries.WORK.unread(me))
                )
                return len(batch) - len(still.all())

            read += await self.write(work)
        return web.json_response({"read": read})

    @routes.get(
        "/api/v1/counters",
        summary="The caller's counters: unassigned, unanswered, unread, mine_active",
        responses={200: CountersView},
    )
    async def counters(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        async with self._engine().connect() as conn:
            totals = await queries.counters(conn, viewer)
        return web.json_response(counters_json(totals))

    @routes.get(
        BASE + "/{id}/history",
        summary="The customer's earlier dialogs, newest first",
        query=HistoryParams,
        responses={200: HistoryView, 404: DIALOG_REFUSALS[404]},
    )
    async def history(self, request: web.Request, *, query: HistoryParams) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        async with self._engine().connect() as conn:
            current = await self.readable_row(conn, viewer, dialog_id)
            rows = await queries.history(conn, current, query.limit)
        return web.json_response(
            {"dialog_id": str(dialog_id), "items": [history_item_json(r) for r in rows]}
        )

    @routes.get(
        BASE + "/{id}/history/{earlier_id}/timeline",
        summary="An earlier dialog's messages, for whoever may read the current one",
        responses={200: TimelineView, 404: DIALOG_REFUSALS[404]},
    )
    async def history_timeline(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        earlier_id = path_uuid(request, "earlier_id", not_found("dialog"))
        async with self._engine().connect() as conn:
            current = await self.readable_row(conn, viewer, dialog_id)
            if not await queries.in_history_of(conn, current, earlier_id):
                raise not_found("dialog")
            rows = await queries.timeline(conn, earlier_id)
        return web.json_response(
            {"dialog_id": str(earlier_id), "items": [message_json(r) for r in rows]}
        )
