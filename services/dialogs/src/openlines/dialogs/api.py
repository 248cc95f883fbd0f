"""The operator API: `/api/v1/dialogs...` (JWT; access per `access`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.dialogs import queries
from openlines.dialogs.access import Viewer, can_see, require_actable, require_takeable
from openlines.dialogs.capacity import limit_applies, locked_load
from openlines.dialogs.domain import NO_LIMIT, Dialog, DomainError, Load, LoadNeeded
from openlines.dialogs.handlers import lock_conversation
from openlines.dialogs.queries import TABS, BadCursor, Cursor, ListQuery
from openlines.dialogs.views import dialog_json, message_json
from openlines.dialogs.writer import DialogWriter, TooMuchContention
from openlines.events.catalog import CloseReason
from openlines.events.envelope import EventPayload, utc_now
from openlines.kit.http.app import read_json
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.kit.lines import LinesConfig

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
# Deadlock and serialization failures: the whole transaction may simply be tried again.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}

# `Load | None`: the caller's load for the max_dialogs rule (see `_execute`).
Action = Callable[[Viewer, Dialog, Load | None], Sequence[EventPayload]]
Decision = Callable[[Dialog, Load | None], Sequence[EventPayload]]


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

    def register(self, app: web.Application) -> None:
        base = "/api/v1/dialogs"
        app.router.add_get(base, self.list_dialogs)
        app.router.add_get(base + "/{id}", self.get_dialog)
        app.router.add_get(base + "/{id}/timeline", self.timeline)
        app.router.add_post(base + "/{id}/take", self.take)
        app.router.add_post(base + "/{id}/close", self.close)
        app.router.add_post(base + "/{id}/reopen", self.reopen)
        app.router.add_post(base + "/{id}/spam", self.spam)
        app.router.add_post(base + "/{id}/read", self.read)
        app.router.add_post(base + "/{id}/messages", self.send_message)

    # -- reads ----------------------------------------------------------------------------

    async def list_dialogs(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        query = _list_query(request)
        async with self._engine().connect() as conn:
            rows, next_cursor = await queries.list_dialogs(conn, viewer, query)
        now = utc_now()
        return web.json_response(
            {
                "items": [dialog_json(row, self.lines, now) for row in rows],
                "next_cursor": next_cursor.encode() if next_cursor else None,
            }
        )

    async def get_dialog(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)
        async with self._engine().connect() as conn:
            row = await self._visible_row(conn, viewer, dialog_id)
        return web.json_response(dialog_json(row, self.lines, utc_now()))

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

    async def take(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            require_takeable(viewer, dialog)
            return dialog.take(viewer.operator_id, may_take_over=viewer.is_supervisor, load=load)

        return await self._act(request, decide)

    async def close(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            # An operator accepts an unassigned dialog and closes it: it stays theirs. A
            # supervisor's close leaves it unassigned (they see every dialog anyway).
            return dialog.close(
                viewer.operator_id, CloseReason.OPERATOR, take_first=not viewer.is_supervisor
            )

        return await self._act(request, decide)

    async def reopen(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)

        async def work(conn: AsyncConnection) -> Any:
            row = await queries.get_dialog(conn, dialog_id)
            # The conversation's lock, taken before the dialog's as the inbound path does,
            # also keeps a customer's message from racing the reopen.
            latest = await lock_conversation(conn, row.conversation_key) if row else None

            def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
                require_actable(viewer, dialog)
                return dialog.reopen(viewer.operator_id, latest_dialog_id=latest, load=load)

            await self._execute(conn, viewer, dialog_id, decide)
            return await queries.get_dialog(conn, dialog_id)

        row = await self._write(work)
        return web.json_response(dialog_json(row, self.lines, utc_now()))

    async def spam(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.mark_spam(viewer.operator_id, take_first=not viewer.is_supervisor)

        return await self._act(request, decide)

    async def read(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.mark_read(viewer.operator_id)

        return await self._act(request, decide)

    async def send_message(self, request: web.Request) -> web.Response:
        viewer = await self._viewer(request)
        dialog_id = _dialog_id(request)
        text, client_message_id, reply_to = _message_body(await read_json(request))
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
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                async with self._engine().begin() as conn:
                    return await work(conn)
            except DomainError as exc:
                raise ApiError(_STATUS_OF.get(exc.code, 409), exc.code, exc.message) from exc
            except TooMuchContention as exc:
                raise ApiError(503, "busy", str(exc)) from exc
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in _RETRYABLE_SQLSTATES or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

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


def _list_query(request: web.Request) -> ListQuery:
    params = request.query
    if any("\x00" in value for value in params.values()):
        raise ApiError(400, "bad_query", "query parameters must not contain NUL (U+0000)")
    tab = params.get("tab", "all")
    if tab not in TABS:
        raise ApiError(400, "bad_tab", f"tab must be one of {', '.join(TABS)}")
    raw_limit = params.get("limit", str(queries.DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= queries.MAX_LIMIT:
        raise ApiError(400, "bad_limit", f"limit must be an integer 1..{queries.MAX_LIMIT}")
    cursor = None
    if params.get("cursor"):
        try:
            cursor = Cursor.decode(params["cursor"])
        except BadCursor as exc:
            raise ApiError(400, "bad_cursor", str(exc)) from exc
    return ListQuery(
        tab=tab,
        line=params.get("line") or None,
        channel=params.get("channel") or None,
        assignee=params.get("assignee") or None,
        q=params.get("q") or None,
        cursor=cursor,
        limit=limit,
    )


def _message_body(body: object) -> tuple[str, str, uuid.UUID | None]:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "body must be a JSON object")
    text = body.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ApiError(422, "invalid_body", "text must be a string")
    client_message_id = body.get("client_message_id")
    if (
        not isinstance(client_message_id, str)
        or not client_message_id
        or len(client_message_id) > MAX_CLIENT_MESSAGE_ID
    ):
        raise ApiError(
            422,
            "invalid_body",
            f"client_message_id must be a non-empty string of at most "
            f"{MAX_CLIENT_MESSAGE_ID} characters",
        )
    reply_to = body.get("reply_to")
    if reply_to is None:
        return text, client_message_id, None
    try:
        return text, client_message_id, uuid.UUID(str(reply_to))
    except ValueError:
        raise ApiError(422, "invalid_body", "reply_to must be a message id") from None
