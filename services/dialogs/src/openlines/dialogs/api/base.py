"""What every group of the operator API shares: the caller's scope, the dialog id of the path,
and running a decision through the writer in one transaction (with the max_dialogs rule).

Each group of endpoints (`core`, and one module per feature) is a mixin of `ApiBase`;
`DialogsApi` (in the package) combines them, so the OpenAPI document and the aiohttp app list
every group's routes from one class.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.dialogs import queries
from openlines.dialogs.access import Viewer, require_actable, row_facts
from openlines.dialogs.capacity import limit_applies, locked_load
from openlines.dialogs.cursors import BadCursor
from openlines.dialogs.domain import NO_LIMIT, Dialog, DomainError, Load, LoadNeeded
from openlines.dialogs.views import dialog_json
from openlines.dialogs.writer import DialogWriter, TooMuchContention
from openlines.events.envelope import EventPayload, utc_now
from openlines.events.lines import LinesConfig
from openlines.kit.db.retry import run_in_transaction
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found

T = TypeVar("T")

BASE = "/api/v1/dialogs"
DEFAULT_MAX_TEXT = 4096

# `Load | None`: the caller's load for the max_dialogs rule (see `ApiBase.execute`).
Action = Callable[[Viewer, Dialog, Load | None], Sequence[EventPayload]]
Decision = Callable[[Dialog, Load | None], Sequence[EventPayload]]
# The access policy's check a command needs (`openlines.dialogs.access.require_*`).
Requirement = Callable[[Viewer, Dialog], None]

# OpenAPI links: where a client (and the contract fuzz) goes next with an id it was given.
Links = dict[str, tuple[str, dict[str, str]]]
SAME_ID = "$response.body#/id"
FIRST_ID = "$response.body#/items/0/id"


def links(source: str, **operations: str) -> Links:
    """Links named as the keywords, each to the dialogs operation (its handler's name) whose
    path `id` is the answer's id at `source`."""
    return {name: (f"dialogs.{handler}", {"id": source}) for name, handler in operations.items()}


DIALOG_REFUSALS: dict[int, routes.ResponseSpec] = {
    404: "not_found: no such dialog, or not visible to the caller",
    409: "already_assigned, dialog_closed, not_closed, newer_dialog_exists, not_assigned...",
    503: "busy: too many concurrent writers on this dialog; retry",
}


class ApiBase:
    def __init__(
        self, engine: Callable[[], AsyncEngine], writer: DialogWriter, lines: LinesConfig
    ) -> None:
        self._engine = engine  # a getter: the runtime creates the engine at start
        self.writer = writer
        self.lines = lines

    def install(self, app: web.Application) -> None:
        routes.install(app, self)

    async def act(
        self,
        request: web.Request,
        action: Action,
        *,
        require: Requirement = require_actable,
        load_of: str | None = None,
    ) -> web.Response:
        """Decide `action` on the path's dialog, once `require` (the access policy's check for
        the command) lets the caller, and answer with the dialog as it now is. `load_of`: as
        for `execute`."""
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)

        def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            require(viewer, dialog)
            return action(viewer, dialog, load)

        async def work(conn: AsyncConnection) -> Any:
            await self.execute(conn, viewer, dialog_id, decide, load_of=load_of)
            # Same transaction: the answer shows the state this command produced.
            return await queries.get_dialog(conn, dialog_id, viewer)

        row = await self.write(work)
        return self.dialog_response(row, viewer)

    async def execute(
        self,
        conn: AsyncConnection,
        viewer: Viewer,
        dialog_id: uuid.UUID,
        decide: Decision,
        *,
        load_of: str | None = None,
    ) -> Dialog:
        """Run `decide` through the writer with the caller's load for the max_dialogs rule:
        NO_LIMIT where the rule does not apply, otherwise counted, under the operator's lock,
        only once a decision asks for it (`LoadNeeded`), so that commands which make nobody
        the assignee take no lock. `load_of`: whose load instead of the caller's (the
        operator a transfer hands the dialog to)."""
        counted: Load | None = None

        def with_load(dialog: Dialog) -> Sequence[EventPayload]:
            applies = limit_applies(self.lines, dialog.line_id, is_supervisor=viewer.is_supervisor)
            return decide(dialog, counted if applies else NO_LIMIT)

        try:
            return await self.writer.execute(conn, dialog_id, with_load)
        except LoadNeeded:
            counted = await locked_load(conn, self.lines, load_of or viewer.operator_id)
            return await self.writer.execute(conn, dialog_id, with_load)

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` in one transaction, retried on conflicts; refusals become their HTTP answer."""
        try:
            return await run_in_transaction(self._engine(), work, attempts=3)
        except DomainError as exc:
            raise refusal(exc) from exc
        except TooMuchContention as exc:
            raise ApiError(503, "busy", str(exc)) from exc

    async def viewer(self, request: web.Request) -> Viewer:
        return Viewer.of(await require_principal(request), self.lines)

    async def readable_row(
        self, conn: AsyncConnection, viewer: Viewer, dialog_id: uuid.UUID
    ) -> Row:
        """The dialog's row, if the caller may read it (*read*: possibly read-only)."""
        row = await queries.get_dialog(conn, dialog_id, viewer)
        if row is None or not viewer.can_read(row_facts(row)):
            raise not_found("dialog")
        return row

    def dialog_json(self, row: Row, viewer: Viewer, now: datetime) -> dict[str, Any]:
        facts = row_facts(row)
        return dialog_json(
            row,
            self.lines,
            now,
            can_write=viewer.can_write(facts),
            crm_visible=viewer.sees_crm_of(facts),
        )

    def dialog_response(self, row: Row, viewer: Viewer, status: int = 200) -> web.Response:
        return web.json_response(self.dialog_json(row, viewer, utc_now()), status=status)

    def max_text_length(self, channel_id: str) -> int:
        found = self.lines.channel(channel_id)
        return found[1].max_text_length if found is not None else DEFAULT_MAX_TEXT


class Position(Protocol):
    """A page's cursor (`openlines.dialogs.cursors`)."""

    def encode(self) -> str: ...


P = TypeVar("P", bound=Position)
BAD_CURSOR: routes.ResponseSpec = "bad_cursor: a cursor this API did not return"


def read_cursor(token: str | None, decode: Callable[[str], P]) -> P | None:
    """The page position a client sent back (None: the first page); 400 if it is not one."""
    if not token:
        return None
    try:
        return decode(token)
    except BadCursor as exc:
        raise bad_cursor(str(exc)) from exc


def bad_cursor(why: str) -> ApiError:
    return ApiError(400, "bad_cursor", why)


def page_json(items: list[dict[str, Any]], after: Position | None) -> dict[str, Any]:
    """A page of a list, and the cursor of the next one (None: this is the last)."""
    return {"items": items, "next_cursor": after.encode() if after else None}


def dialog_id_of(request: web.Request) -> uuid.UUID:
    return path_uuid(request, "id", not_found("dialog"))


def path_uuid(request: web.Request, name: str, unknown: ApiError) -> uuid.UUID:
    """The path's `name` as a UUID; a malformed one names nothing either, so it gets the
    answer an unknown one gets (`unknown`)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise unknown from None


def refusal(error: DomainError) -> ApiError:
    """A refusal as the API answers it (also one found before any dialog is loaded)."""
    return ApiError(error.status, error.code, error.message)
