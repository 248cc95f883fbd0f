"""Quick replies and drafts: an operator's workspace (Bitrix24, KeyCRM, RetailCRM).

Quick replies are canned answers for the lines they name: read by whoever works on or
supervises one of those lines, written by supervisors and chat admins of all of them
(`Scope.sees_lines`, `Scope.may_manage_quick_replies`). Their text is a template with a few
placeholders (`domain.templates`), checked at save time and rendered when one is sent
(`POST /api/v1/dialogs/{id}/messages {"quick_reply_id"}`, in `core`). A draft is what one
operator typed in one dialog and has not sent; sending a message clears it.

Neither is a dialog event: both live in `tables.workspace`, which no rebuild touches.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Self

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import workspace
from openlines.dialogs.access import Viewer, require_actable
from openlines.dialogs.api.base import (
    BAD_CURSOR,
    BASE,
    DIALOG_REFUSALS,
    FIRST_ID,
    SAME_ID,
    ApiBase,
    dialog_id_of,
    links,
    page_json,
    path_uuid,
    read_cursor,
)
from openlines.dialogs.domain import Dialog, QuickReplyNotForLine, UnknownQuickReply
from openlines.dialogs.domain.templates import (
    PLACEHOLDERS,
    TemplateValues,
    literal,
    render,
    validate,
)
from openlines.dialogs.workspace import QuickReplyCursor, QuickReplyQuery
from openlines.events.envelope import utc_now
from openlines.events.limits import ID_MAX, TEXT_MAX
from openlines.events.lines import LinesConfig
from openlines.kit.http import routes
from openlines.kit.http.errors import ApiError, not_found

QUICK_REPLIES = "/api/v1/quick-replies"
TEXT_LIMIT = 2000
TITLE_LIMIT = 200
CATEGORY_LIMIT = 100
LINES_LIMIT = 64
FROM_MESSAGE_TITLE = 60

LineId = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
_TEXT_DOC = "at most 2,000 characters; placeholders: " + PLACEHOLDERS


class QuickReplyBody(routes.StrictModel):
    """A new quick reply: title, text and lines; or `from_message_id` (a message the caller
    may read), whose text it keeps as it is, with the dialog's line unless `lines` is given."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_LIMIT)
    text: str | None = Field(
        default=None, min_length=1, max_length=TEXT_LIMIT, description=_TEXT_DOC
    )
    category: str | None = Field(default=None, min_length=1, max_length=CATEGORY_LIMIT)
    lines: list[LineId] | None = Field(default=None, min_length=1, max_length=LINES_LIMIT)
    from_message_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.from_message_id is not None:
            if self.text is not None:
                raise ValueError("give text or from_message_id, not both")
        else:
            missing = [name for name in ("title", "text", "lines") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required without from_message_id")
        return self


class QuickReplyPatch(routes.StrictModel):
    """The fields to change; `"category": null` removes the category."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_LIMIT)
    text: str | None = Field(
        default=None, min_length=1, max_length=TEXT_LIMIT, description=_TEXT_DOC
    )
    category: str | None = Field(default=None, min_length=1, max_length=CATEGORY_LIMIT)
    lines: list[LineId] | None = Field(default=None, min_length=1, max_length=LINES_LIMIT)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        for name in ("title", "text", "lines"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: may not be null")
        return self


class QuickReplyParams(routes.QueryModel):
    q: str | None = Field(default=None, max_length=200, description="in title and text")
    category: str | None = Field(default=None, max_length=CATEGORY_LIMIT)
    line: str | None = Field(default=None, max_length=ID_MAX, description="replies of this line")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class DraftBody(routes.StrictModel):
    text: str = Field(max_length=TEXT_MAX)


@dataclass(frozen=True)
class SavedMessage:
    """What saving a message as a quick reply takes from it."""

    text: str
    line_id: str


class QuickReplyView(BaseModel):
    """A quick reply; `text` is its template."""

    id: uuid.UUID
    title: str
    text: str
    category: str | None
    lines: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class QuickReplyPage(BaseModel):
    """Quick replies by title; `next_cursor` fetches the next page."""

    items: list[QuickReplyView]
    next_cursor: str | None


class DraftView(BaseModel):
    dialog_id: uuid.UUID
    text: str
    updated_at: datetime


_REPLY_OPERATIONS = {
    "GetQuickReply": "get_quick_reply",
    "UpdateQuickReply": "update_quick_reply",
    "DeleteQuickReply": "delete_quick_reply",
}
_FROM_REPLY = links(SAME_ID, **_REPLY_OPERATIONS)
_FIRST = links(FIRST_ID, **_REPLY_OPERATIONS)
_REPLY_REFUSALS: dict[int, routes.ResponseSpec] = {
    404: "not_found: no such quick reply, or not one of the caller's lines",
    403: "not_allowed: only supervisors and chat admins of all its lines may change it",
}
_SAVE_REFUSALS: dict[int, routes.ResponseSpec] = {
    403: "not_allowed: only supervisors and chat admins of all its lines may write it",
    422: "invalid_body, template_syntax, unknown_variable, template_not_allowed, unknown_line,"
    " unknown_message (from_message_id), empty_message, text_too_long",
}


def quick_reply_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "title": row.title,
        "text": row.text,
        "category": row.category,
        "lines": list(row.lines),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def draft_json(row: Row) -> dict[str, Any]:
    return {
        "dialog_id": str(row.dialog_id),
        "text": row.text,
        "updated_at": row.updated_at.isoformat(),
    }


def quick_reply_text(reply: Row | None, dialog: Dialog, viewer: Viewer, lines: LinesConfig) -> str:
    """The quick reply rendered for this dialog and operator. It must be one for the dialog's
    line (that the caller may write in the dialog, the API checked first)."""
    if reply is None:
        raise UnknownQuickReply("no such quick reply")
    if dialog.line_id not in reply.lines:
        raise QuickReplyNotForLine(f"the quick reply is not for line {dialog.line_id!r}")
    operator = lines.operator(viewer.operator_id)
    line = lines.line(dialog.line_id)
    values = TemplateValues(
        customer_name=dialog.customer.name if dialog.customer else "",
        operator_name=(operator.name if operator else "") or viewer.operator_id,
        line_name=(line.name if line else "") or dialog.line_id,
        dialog_id=str(dialog.id),
    )
    return render(reply.text, values)


class QuickEndpoints(ApiBase):
    # -- quick replies ----------------------------------------------------------------------

    @routes.get(
        QUICK_REPLIES,
        summary="The quick replies of the caller's lines, by title",
        query=QuickReplyParams,
        responses={200: QuickReplyPage, 400: BAD_CURSOR},
        links=_FIRST,
    )
    async def list_quick_replies(
        self, request: web.Request, *, query: QuickReplyParams
    ) -> web.Response:
        viewer = await self.viewer(request)
        cursor = read_cursor(query.cursor, QuickReplyCursor.decode)
        wanted = QuickReplyQuery(
            q=query.q or None,
            category=query.category or None,
            line=query.line or None,
            cursor=cursor,
            limit=query.limit,
        )
        async with self._engine().connect() as conn:
            rows, next_cursor = await workspace.list_quick_replies(conn, viewer, wanted)
        return web.json_response(page_json([quick_reply_json(r) for r in rows], next_cursor))

    @routes.post(
        QUICK_REPLIES,
        summary="Save a quick reply (supervisors and chat admins)",
        body=QuickReplyBody,
        responses={201: QuickReplyView, **_SAVE_REFUSALS},
        links=_FROM_REPLY,
    )
    async def create_quick_reply(
        self, request: web.Request, *, body: QuickReplyBody
    ) -> web.Response:
        viewer = await self.viewer(request)

        async def work(conn: AsyncConnection) -> Row:
            title, text, lines = body.title, body.text, body.lines
            if body.from_message_id is not None:
                saved = await self._readable_message(conn, viewer, body.from_message_id)
                text = literal(saved.text)
                title = title or _title_of(saved.text)
                lines = lines or [saved.line_id]
            assert title is not None and text is not None and lines is not None
            lines = self._known_lines(lines)
            self._require_manager(viewer, lines)
            _check_text(text)
            now = utc_now()
            return await workspace.create_quick_reply(
                conn,
                {
                    "id": uuid.uuid4(),
                    "title": title,
                    "text": text,
                    "category": body.category,
                    "lines": lines,
                    "created_by": viewer.operator_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )

        row = await self.write(work)
        return web.json_response(quick_reply_json(row), status=201)

    @routes.get(
        QUICK_REPLIES + "/{id}",
        summary="One quick reply",
        responses={200: QuickReplyView, 404: _REPLY_REFUSALS[404]},
        links=_FROM_REPLY,
    )
    async def get_quick_reply(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        async with self._engine().connect() as conn:
            row = await self._visible_reply(conn, viewer, _reply_id_of(request))
        return web.json_response(quick_reply_json(row))

    @routes.patch(
        QUICK_REPLIES + "/{id}",
        summary="Change a quick reply (supervisors and chat admins of all its lines)",
        body=QuickReplyPatch,
        responses={200: QuickReplyView, 404: _REPLY_REFUSALS[404], **_SAVE_REFUSALS},
        links=_FROM_REPLY,
    )
    async def update_quick_reply(
        self, request: web.Request, *, body: QuickReplyPatch
    ) -> web.Response:
        viewer = await self.viewer(request)
        reply_id = _reply_id_of(request)

        async def work(conn: AsyncConnection) -> Row | None:
            row = await self._visible_reply(conn, viewer, reply_id, lock=True)
            self._require_manager(viewer, row.lines)
            changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
            if body.lines is not None:
                changes["lines"] = self._known_lines(body.lines)
                self._require_manager(viewer, changes["lines"])
            if body.text is not None:
                _check_text(body.text)
            return await workspace.update_quick_reply(
                conn, reply_id, {**changes, "updated_at": utc_now()}
            )

        row = await self.write(work)
        if row is None:  # deleted meanwhile
            raise not_found("quick reply")
        return web.json_response(quick_reply_json(row))

    @routes.delete(
        QUICK_REPLIES + "/{id}",
        summary="Delete a quick reply (supervisors and chat admins of all its lines)",
        responses={204: None, **_REPLY_REFUSALS},
    )
    async def delete_quick_reply(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        reply_id = _reply_id_of(request)

        async def work(conn: AsyncConnection) -> None:
            row = await self._visible_reply(conn, viewer, reply_id, lock=True)
            self._require_manager(viewer, row.lines)
            await workspace.delete_quick_reply(conn, reply_id)

        await self.write(work)
        return web.Response(status=204)

    async def _visible_reply(
        self, conn: AsyncConnection, viewer: Viewer, reply_id: uuid.UUID, *, lock: bool = False
    ) -> Row:
        """The quick reply if the caller may read it (`lock`: until commit, for a write
        checked against the lines it has)."""
        row = await workspace.get_quick_reply(conn, reply_id, lock=lock)
        if row is None or not viewer.sees_lines(row.lines):
            raise not_found("quick reply")
        return row

    async def _readable_message(
        self, conn: AsyncConnection, viewer: Viewer, message_id: uuid.UUID
    ) -> SavedMessage:
        """The message with its dialog's line, if the caller may read its dialog."""
        found = await workspace.message(conn, message_id)
        dialog = None
        if found is not None:
            try:
                dialog = await self.readable_row(conn, viewer, found.dialog_id)
            except ApiError:
                dialog = None
        if found is None or dialog is None:
            raise ApiError(422, "unknown_message", "from_message_id: no message you may read")
        if found.deleted or not (found.text or "").strip():
            raise ApiError(422, "empty_message", "from_message_id: the message has no text")
        return SavedMessage(found.text, dialog.line_id)

    def _known_lines(self, lines: list[str]) -> list[str]:
        unknown = sorted({line for line in lines if self.lines.line(line) is None})
        if unknown:
            raise ApiError(422, "unknown_line", f"unknown lines: {', '.join(unknown)}")
        return list(dict.fromkeys(lines))  # without repeats, in their order

    @staticmethod
    def _require_manager(viewer: Viewer, lines: list[str]) -> None:
        if not viewer.may_manage_quick_replies(lines):
            raise ApiError(
                403,
                "not_allowed",
                "only supervisors and chat admins of all the reply's lines may change it",
            )

    # -- drafts -------------------------------------------------------------------------------

    @routes.get(
        BASE + "/{id}/draft",
        summary="The caller's unsent text in this dialog",
        responses={
            200: DraftView,
            404: "not_found: no such dialog; no_draft: nothing saved",
            403: "not_allowed",
        },
    )
    async def get_draft(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)

        async def work(conn: AsyncConnection) -> Row | None:
            await self._writable(conn, viewer, dialog_id)
            return await workspace.get_draft(conn, viewer.operator_id, dialog_id)

        row = await self.write(work)
        if row is None:
            raise ApiError(404, "no_draft", "no draft saved for this dialog")
        return web.json_response(draft_json(row))

    @routes.put(
        BASE + "/{id}/draft",
        summary="Keep the caller's unsent text in this dialog (until they send a message)",
        body=DraftBody,
        responses={200: DraftView, **DIALOG_REFUSALS, 403: "not_allowed"},
    )
    async def put_draft(self, request: web.Request, *, body: DraftBody) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)

        async def work(conn: AsyncConnection) -> Row:
            await self._writable(conn, viewer, dialog_id)
            return await workspace.put_draft(
                conn, viewer.operator_id, dialog_id, body.text, utc_now()
            )

        return web.json_response(draft_json(await self.write(work)))

    @routes.delete(
        BASE + "/{id}/draft",
        summary="Forget the caller's draft in this dialog",
        responses={204: None, 404: DIALOG_REFUSALS[404], 403: "not_allowed"},
    )
    async def delete_draft(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)

        async def work(conn: AsyncConnection) -> None:
            await self._writable(conn, viewer, dialog_id)
            await workspace.clear_draft(conn, viewer.operator_id, dialog_id)

        await self.write(work)
        return web.Response(status=204)

    async def _writable(self, conn: AsyncConnection, viewer: Viewer, dialog_id: uuid.UUID) -> None:
        """Drafts are for dialogs one may write in (the write side's state decides)."""
        require_actable(viewer, await self.writer.load(conn, dialog_id))


def _check_text(text: str) -> None:
    if len(text) > TEXT_LIMIT:
        raise ApiError(422, "text_too_long", f"a quick reply holds at most {TEXT_LIMIT} characters")
    validate(text)


def _title_of(text: str) -> str:
    first = text.strip().splitlines()[0].strip()
    return first if len(first) <= FROM_MESSAGE_TITLE else first[: FROM_MESSAGE_TITLE - 1] + "…"


def _reply_id_of(request: web.Request) -> uuid.UUID:
    return path_uuid(request, "id", not_found("quick reply"))
