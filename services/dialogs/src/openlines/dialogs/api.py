"""The operator API: `/api/v1/dialogs...` (JWT; access per `access`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.dialogs import queries
from openlines.dialogs.access import Viewer, can_see, require_actable, require_takeable
from openlines.dialogs.capacity import limit_applies, locked_load
from openlines.dialogs.domain import NO_LIMIT, Dialog, DomainError, Load, LoadNeeded
from openlines.dialogs.queries import BadCursor, Cursor, ListQuery
from openlines.dialogs.store import lock_conversation
from openlines.dialogs.views import (
    DialogPage,
    DialogView,
    ReplyAccepted,
    TimelineView,
    dialog_json,
    message_json,
)
from openlines.dialogs.writer import DialogWriter, TooMuchContention
from openlines.events.catalog import CloseReason
from openlines.events.envelope import EventPayload, utc_now
from openlines.events.lines import LinesConfig
from openlines.kit.db.retry import run_in_transaction
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found

T = TypeVar("T")

DEFAULT_MAX_TEXT = 4096
MAX_CLIENT_MESSAGE_ID = 200

# Domain refusals as HTTP answers; the code is passed through unchanged.
_STATUS_OF = {
    "not_found": 404,
    "already_assigned": 409,
    "dialog_closed": 409,
    "not_closed": 409,
    "newer_dialog_exists": 409,
    "not_assigned": 409,
    "not_assignable": 409,
    "empty_message": 422,
    "text_too_long": 422,
    "unknown_message": 422,
    "at_capacity": 409,
}

# `Load | None`: the caller's load for the max_dialogs rule (see `_execute`).
Action = Callable[[Viewer, Dialog, Load | None], Sequence[EventPayload]]
Decision = Callable[[Dialog, Load | None], Sequence[EventPayload]]

MAX_FILTER = 200


class ListParams(routes.QueryModel):
    tab: Literal["unassigned", "active", "closed", "spam", "all"] = Field(
        default="all", description='"active" is "mine" for an operator'
    )
    line: str | None = Field(default=None, max_length=MAX_FILTER)
    channel: str | None = Field(default=None, max_length=MAX_FILTER)
    assignee: str | None = Field(default=None, max_length=MAX_FILTER)
    q: str | None = Field(
        default=None, max_length=MAX_FILTER, description="in title, name, last message"
    )
    # No length bound of its own: aiohttp bounds the request line, and any cursor this API
    # did not return is 400 bad_cursor, whatever its length.
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=queries.DEFAULT_LIMIT, ge=1, le=queries.MAX_LIMIT)


class ReplyBody(routes.StrictModel):
    text: str | None = Field(default=None, description="empty only with attachments")
    client_message_id: str = Field(
        min_length=1,
        max_length=MAX_CLIENT_MESSAGE_ID,
        description="the client's id: a retry with the same id is the same message",
    )
    reply_to: uuid.UUID | None = Field(default=None, description="a message of this dialog")


_DIALOG_REFUSALS: dict[int, routes.ResponseSpec] = {
    404: "not_found: no such dialog, or not visible to the caller",
    409: "already_assigned, dialog_closed, not_closed, newer_dialog_exists, not_assigned...",
    503: "busy: too many concurrent writers on this dialog; retry",
}
BASE = "/api/v1/dialogs"
_FIRST = "$response.body#/items/0/id"
_SAME = "$response.body#/id"
# Where a client (and the contract fuzz) goes next with a dialog id it was given.
_FROM_LIST = {
    name: (f"dialogs.{target}", {"id": _FIRST})
    for name, target in (
        ("GetDialog", "get_dialog"),
        ("Timeline", "timeline"),
        ("Take", "take"),
        ("Reply", "send_message"),
        ("Close", "close"),
    )
}
_FROM_DIALOG = {
    **{name: (target, {"id": _SAME}) for name, (target, _) in _FROM_LIST.items()},
    "Reopen": ("dialogs.reopen", {"id": _SAME}),
    "CreateLead": ("crm_link.post_dialog_lead", {"dialog_id": _SAME}),
}


def outbound_message_id(dialog_id: uuid.UUID, author_id: str, client_message_id: str) -> uuid.UUID:
    """Stable per (dialog, author, client_message_id): a client retry names the same message,
    and two operators whose clients both count from 1 do not collide."""
    return uuid.uuid5(dialog_id, f"out:{author_id}:{client_message_id}")


class DialogsApi:
    def __init__(
        self, engine: Callable[[], AsyncEngine], writer: DialogWriter, lines: LinesConfig
    ) -> None:
        self._engine = engine  # a getter: the runtime creates the engine at start
        self.writer = writer
        self.lines = lines

    def install(self, app: web.Application) -> None:
        routes.install(app, self)

    # -- reads ----------------------------------------------------------------------------

    @routes.get(
        BASE,
        summary="List the dialogs the caller may see",
        query=ListParams,
        responses={200: DialogPage, 400: "bad_cursor: a cursor this API did not return"},
        links=_FROM_LIST,
    )
    async def list_dialogs(self, request: web.Request, *, query: ListParams) -> web.Response:
        viewer = await self._viewer(request)
        wanted = _list_query(query)
        async with self._engine().connect() as conn:
            rows, next_cursor = await queries.list_dialogs(conn, viewer, wanted)
        now = utc_now()
        return web.json_response(
            {
                "items": [dialog_json(row, self.lines, now) for row in rows],
                "next_cursor": next_cursor.encode() if next_cursor else None,
            }
        )

    @routes.get(
        BASE + "/{id}",
        summary="One dialog",
        responses={200: DialogView, 404: _DIALOG_REFUSALS[404]},
        links=_FROM_DIALOG,
    )
    async def get_dialog(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)
        async with self._engine().connect() as conn:
            row = await self._visible_row(conn, viewer, dialog_id)
        return web.json_response(dialog_json(row, self.lines, utc_now()))

    @routes.get(
        BASE + "/{id}/timeline",
        summary="A dialog's messages, oldest first",
        responses={200: TimelineView, 404: _DIALOG_REFUSALS[404]},
    )
    async def timeline(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)
        async with self._engine().connect() as conn:
            await self._visible_row(conn, viewer, dialog_id)
            rows = await queries.timeline(conn, dialog_id)
        return web.json_response(
            {"dialog_id": str(dialog_id), "items": [message_json(r) for r in rows]}
        )

    # -- commands -------------------------------------------------------------------------

    @routes.post(
        BASE + "/{id}/take",
        summary="Take the dialog (a supervisor may take it over)",
        responses={200: DialogView, **_DIALOG_REFUSALS},
        links=_FROM_DIALOG,
    )
    async def take(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            require_takeable(viewer, dialog)
            return dialog.take(viewer.operator_id, may_take_over=viewer.is_supervisor, load=load)

        return await self._act(request, decide)

    @routes.post(
        BASE + "/{id}/close",
        summary="Close the dialog",
        responses={200: DialogView, **_DIALOG_REFUSALS},
        links=_FROM_DIALOG,
    )
    async def close(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            # An operator accepts an unassigned dialog and closes it: it stays theirs. A
            # supervisor's close leaves it unassigned (they see every dialog anyway).
            return dialog.close(
                viewer.operator_id, CloseReason.OPERATOR, take_first=not viewer.is_supervisor
            )

        return await self._act(request, decide)

    @routes.post(
        BASE + "/{id}/reopen",
        summary="Reopen a closed dialog",
        responses={200: DialogView, **_DIALOG_REFUSALS},
        links=_FROM_DIALOG,
    )
    async def reopen(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)

        async def work(conn: AsyncConnection) -> Any:
            # The conversation's lock, taken before the dialog's as the inbound path does,
            # also keeps a customer's message from racing the reopen. Its key comes from the
            # dialog's own stream (the write side), never from the rebuildable read model.
            key = (await self.writer.load(conn, dialog_id)).conversation_key
            latest = await lock_conversation(conn, key) if key else None

            def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
                require_actable(viewer, dialog)
                return dialog.reopen(viewer.operator_id, latest_dialog_id=latest, load=load)

            await self._execute(conn, viewer, dialog_id, decide)
            return await queries.get_dialog(conn, dialog_id)

        row = await self._write(work)
        return web.json_response(dialog_json(row, self.lines, utc_now()))

    @routes.post(
        BASE + "/{id}/spam",
        summary="Mark the dialog as spam",
        responses={200: DialogView, **_DIALOG_REFUSALS},
    )
    async def spam(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.mark_spam(viewer.operator_id, take_first=not viewer.is_supervisor)

        return await self._act(request, decide)

    @routes.post(
        BASE + "/{id}/read",
        summary="Mark the dialog's messages read",
        responses={200: DialogView, **_DIALOG_REFUSALS},
    )
    async def read(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.mark_read(viewer.operator_id)

        return await self._act(request, decide)

    @routes.post(
        BASE + "/{id}/messages",
        summary="Reply to the customer",
        body=ReplyBody,
        responses={
            202: ReplyAccepted,
            **_DIALOG_REFUSALS,
            422: "empty_message, text_too_long, unknown_message (reply_to)",
        },
    )
    async def send_message(self, request: web.Request, *, body: ReplyBody) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)
        text, client_message_id, reply_to = body.text or "", body.client_message_id, body.reply_to
        message_id = outbound_message_id(dialog_id, viewer.operator_id, client_message_id)
        now = utc_now()

        def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.reply(
                viewer.operator_id,
                text,
                message_id=message_id,
                client_message_id=client_message_id,
                now=now,
                max_text_length=self._max_text_length(dialog.channel_id),
                reply_to=reply_to,
                is_supervisor=viewer.is_supervisor,
                load=load,
            )

        async def work(conn: AsyncConnection) -> Dialog:
            return await self._execute(conn, viewer, dialog_id, decide)

        dialog = await self._write(work)
        # A retry finds the message recorded the first time (its id was derived the same way).
        message = dialog.message_by_client_id(viewer.operator_id, client_message_id)
        assert message is not None
        return web.json_response(
            {
                "message_id": str(message.message_id),
                "status": str(message.status) if message.status else None,
            },
            status=202,
        )

    # -- plumbing -------------------------------------------------------------------------

    async def _act(self, request: web.Request, action: Action) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)

        async def work(conn: AsyncConnection) -> Any:
            await self._execute(conn, viewer, dialog_id, lambda d, load: action(viewer, d, load))
            # Same transaction: the answer shows the state this command produced.
            return await queries.get_dialog(conn, dialog_id)

        row = await self._write(work)
        return web.json_response(dialog_json(row, self.lines, utc_now()))

    async def _execute(
        self, conn: AsyncConnection, viewer: Viewer, dialog_id: uuid.UUID, decide: Decision
    ) -> Dialog:
        """Run `decide` through the writer with the caller's load for the max_dialogs rule:
        NO_LIMIT where the rule does not apply, otherwise counted, under the operator's lock,
        only once a decision asks for it (`LoadNeeded`), so that commands which make nobody
        the assignee take no lock."""
        counted: Load | None = None

        def with_load(dialog: Dialog) -> Sequence[EventPayload]:
            applies = limit_applies(self.lines, dialog.line_id, is_supervisor=viewer.is_supervisor)
            return decide(dialog, counted if applies else NO_LIMIT)

        try:
            return await self.writer.execute(conn, dialog_id, with_load)
        except LoadNeeded:
            counted = await locked_load(conn, self.lines, viewer.operator_id)
            return await self.writer.execute(conn, dialog_id, with_load)

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            return await run_in_transaction(self._engine(), work, attempts=3)
        except DomainError as exc:
            raise ApiError(_STATUS_OF.get(exc.code, 409), exc.code, exc.message) from exc
        except TooMuchContention as exc:
            raise ApiError(503, "busy", str(exc)) from exc

    async def _viewer(self, request: web.Request) -> Viewer:
        return Viewer.of(await require_principal(request), self.lines)

    async def _visible_row(self, conn: AsyncConnection, viewer: Viewer, dialog_id: uuid.UUID):
        row = await queries.get_dialog(conn, dialog_id)
        if row is None or not can_see(
            viewer,
            status=row.status,
            line_id=row.line_id,
            assignee_id=row.assignee_id,
            participants=row.participants,
        ):
            raise not_found("dialog")
        return row

    def _max_text_length(self, channel_id: str) -> int:
        found = self.lines.channel(channel_id)
        return found[1].max_text_length if found is not None else DEFAULT_MAX_TEXT


def _dialog_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise not_found("dialog") from None  # a malformed id names no dialog either


def _list_query(params: ListParams) -> ListQuery:
    cursor = None
    if params.cursor:
        try:
            cursor = Cursor.decode(params.cursor)
        except BadCursor as exc:
            raise ApiError(400, "bad_cursor", str(exc)) from exc
    return ListQuery(
        tab=params.tab,
        line=params.line or None,
        channel=params.channel or None,
        assignee=params.assignee or None,
        q=params.q or None,
        cursor=cursor,
        limit=params.limit,
    )
