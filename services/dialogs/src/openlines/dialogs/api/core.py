"""The core of the operator API: the list, a dialog, its timeline, and the commands an
operator has always had (take, reply, close, reopen, spam; reading is in `reading`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from aiohttp import web
from pydantic import Field, model_validator
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import queries, workspace
from openlines.dialogs.access import Viewer, require_actable, require_takeable, row_facts
from openlines.dialogs.api.base import (
    BAD_CURSOR,
    BASE,
    DIALOG_REFUSALS,
    FIRST_ID,
    SAME_ID,
    ApiBase,
    bad_cursor,
    dialog_id_of,
    links,
    page_json,
    read_cursor,
)
from openlines.dialogs.api.edit import CloseBody, close_and_open_new
from openlines.dialogs.api.quick import quick_reply_text
from openlines.dialogs.domain import Dialog, Load
from openlines.dialogs.domain.window import filled_template
from openlines.dialogs.queries import DEFAULT_ORDER, Cursor, ListQuery
from openlines.dialogs.store import lock_conversation
from openlines.dialogs.views import (
    DialogPage,
    DialogView,
    ReplyAccepted,
    TimelineView,
    message_json,
)
from openlines.events.catalog import CloseReason
from openlines.events.envelope import EventPayload, utc_now
from openlines.kit.http import routes

MAX_CLIENT_MESSAGE_ID = 200

MAX_FILTER = 200


class ListParams(routes.QueryModel):
    tab: Literal["unassigned", "active", "closed", "spam", "all"] = Field(
        default="all", description='"active" is "mine" for an operator'
    )
    line: str | None = Field(default=None, max_length=MAX_FILTER)
    channel: str | None = Field(default=None, max_length=MAX_FILTER)
    assignee: str | None = Field(default=None, max_length=MAX_FILTER)
    q: str | None = Field(
        default=None,
        max_length=MAX_FILTER,
        description=(
            "full-text, every word a prefix: all of the dialog's messages and notes, its"
            " title, the customer's name, username, external id, phone and e-mail"
        ),
    )
    unanswered: bool | None = Field(
        default=None, description="open, and the last message is the customer's (or not)"
    )
    unread: bool | None = Field(
        default=None, description="holds customer messages the caller has not read (or not)"
    )
    pinned: bool | None = Field(default=None, description="pinned by the caller (or not)")
    participant: Literal["me"] | None = Field(
        default=None, description="the caller is on it (assignee or participant)"
    )
    sla: Literal["warning", "breach"] | None = Field(
        default=None, description="the `sla.state` of the dialog JSON, at the same instant"
    )
    sort: queries.Sort = Field(
        default="updated", description="last update, waiting since (not waiting last), opening"
    )
    order: queries.Order | None = Field(
        default=None, description="default: desc, but asc for `waiting` (longest first)"
    )
    # No length bound of its own: aiohttp bounds the request line, and any cursor this API
    # did not return is 400 bad_cursor, whatever its length.
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=queries.DEFAULT_LIMIT, ge=1, le=queries.MAX_LIMIT)


class TemplateBody(routes.StrictModel):
    """One of the channel's approved WhatsApp templates (lines config `whatsapp.templates`)."""

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=1, max_length=15)
    variables: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=16, description="values of {{1}}, {{2}}... in order"
    )


class ReplyBody(routes.StrictModel):
    """Exactly one of `text`, `quick_reply_id` and `template`."""

    text: str | None = Field(default=None, description="empty only with attachments")
    quick_reply_id: uuid.UUID | None = Field(
        default=None, description="send this quick reply of the dialog's line, rendered"
    )
    client_message_id: str = Field(
        min_length=1,
        max_length=MAX_CLIENT_MESSAGE_ID,
        description="the client's id: a retry with the same id is the same message",
    )
    reply_to: uuid.UUID | None = Field(default=None, description="a message of this dialog")
    template: TemplateBody | None = Field(
        default=None,
        description="a WhatsApp template: the only message allowed 24 hours after the"
        " customer's last one (free text is then 409 window_closed)",
    )

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        given = [self.text, self.quick_reply_id, self.template]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of text, quick_reply_id and template")
        return self


_DIALOG_OPERATIONS = {
    "GetDialog": "get_dialog",
    "Timeline": "timeline",
    "Take": "take",
    "Reply": "send_message",
    "Close": "close",
}
_FROM_LIST = links(FIRST_ID, **_DIALOG_OPERATIONS)
_FROM_DIALOG = {
    **links(
        SAME_ID,
        **_DIALOG_OPERATIONS,
        Reopen="reopen",
        Rename="rename",
        Pin="pin",
        Unpin="unpin",
        Transfer="transfer",
        Join="join",
        Leave="leave",
        Note="add_note",
        Read="read",
        History="history",
    ),
    "CreateLead": ("crm_link.post_dialog_lead", {"dialog_id": SAME_ID}),
}

_FROM_TIMELINE = {
    name: (
        f"dialogs.{target}",
        {"id": "$request.path.id", "message_id": "$response.body#/items/0/id"},
    )
    for name, target in (("EditMessage", "edit_message"), ("DeleteMessage", "delete_message"))
}


def outbound_message_id(dialog_id: uuid.UUID, author_id: str, client_message_id: str) -> uuid.UUID:
    """Stable per (dialog, author, client_message_id): a client retry names the same message,
    and two operators whose clients both count from 1 do not collide."""
    return uuid.uuid5(dialog_id, f"out:{author_id}:{client_message_id}")


class CoreEndpoints(ApiBase):
    # -- reads ----------------------------------------------------------------------------

    @routes.get(
        BASE,
        summary="List the dialogs the caller may see",
        query=ListParams,
        responses={200: DialogPage, 400: BAD_CURSOR},
        links=_FROM_LIST,
    )
    async def list_dialogs(self, request: web.Request, *, query: ListParams) -> web.Response:
        viewer = await self.viewer(request)
        wanted = _list_query(query)
        now = utc_now()  # one instant for the `sla` filter and every item's `sla.state`
        async with self._engine().connect() as conn:
            rows, next_cursor = await queries.list_dialogs(conn, viewer, wanted, self.lines, now)
        items = [self.dialog_json(row, viewer, now) for row in rows]
        return web.json_response(page_json(items, next_cursor))

    @routes.get(
        BASE + "/{id}",
        summary="One dialog",
        responses={200: DialogView, 404: DIALOG_REFUSALS[404]},
        links=_FROM_DIALOG,
    )
    async def get_dialog(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        async with self._engine().connect() as conn:
            row = await self.readable_row(conn, viewer, dialog_id)
        return self.dialog_response(row, viewer)

    @routes.get(
        BASE + "/{id}/timeline",
        summary="A dialog's messages, oldest first",
        responses={200: TimelineView, 404: DIALOG_REFUSALS[404]},
        links=_FROM_TIMELINE,
    )
    async def timeline(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        async with self._engine().connect() as conn:
            row = await self.readable_row(conn, viewer, dialog_id)
            rows = await queries.timeline(conn, dialog_id)
        return web.json_response(
            {
                "dialog_id": str(dialog_id),
                "items": [message_json(r) for r in rows],
                "can_write": viewer.can_write(row_facts(row)),
            }
        )

    # -- commands -------------------------------------------------------------------------

    @routes.post(
        BASE + "/{id}/take",
        summary="Take the dialog (a supervisor may take it over)",
        responses={200: DialogView, **DIALOG_REFUSALS},
        links=_FROM_DIALOG,
    )
    async def take(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            return dialog.take(viewer.operator_id, may_take_over=viewer.is_supervisor, load=load)

        return await self.act(request, decide, require=require_takeable)

    @routes.post(
        BASE + "/{id}/close",
        summary="Close the dialog (`open_new`: and continue in a new one, yours)",
        body=CloseBody,
        responses={
            200: DialogView,
            201: DialogView,
            **DIALOG_REFUSALS,
        },
        links=_FROM_DIALOG,
    )
    async def close(self, request: web.Request, *, body: CloseBody) -> web.Response:
        if body.open_new:
            return await close_and_open_new(self, request)

        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            # An operator accepts an unassigned dialog and closes it: it stays theirs. A
            # supervisor's close leaves it unassigned (they see every dialog anyway).
            return dialog.close(
                viewer.operator_id, CloseReason.OPERATOR, take_first=not viewer.is_supervisor
            )

        return await self.act(request, decide)

    @routes.post(
        BASE + "/{id}/reopen",
        summary="Reopen a closed dialog",
        responses={200: DialogView, **DIALOG_REFUSALS},
        links=_FROM_DIALOG,
    )
    async def reopen(self, request: web.Request) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)

        async def work(conn: AsyncConnection) -> Any:
            # The conversation's lock, taken before the dialog's as the inbound path does,
            # also keeps a customer's message from racing the reopen. Its key comes from the
            # dialog's own stream (the write side), never from the rebuildable read model.
            key = (await self.writer.load(conn, dialog_id)).conversation_key
            latest = await lock_conversation(conn, key) if key else None

            def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
                require_actable(viewer, dialog)
                return dialog.reopen(viewer.operator_id, latest_dialog_id=latest, load=load)

            await self.execute(conn, viewer, dialog_id, decide)
            return await queries.get_dialog(conn, dialog_id, viewer)

        row = await self.write(work)
        return self.dialog_response(row, viewer)

    @routes.post(
        BASE + "/{id}/spam",
        summary="Mark the dialog as spam",
        responses={200: DialogView, **DIALOG_REFUSALS},
    )
    async def spam(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.mark_spam(viewer.operator_id, take_first=not viewer.is_supervisor)

        return await self.act(request, decide)

    @routes.post(
        BASE + "/{id}/messages",
        summary="Reply to the customer",
        body=ReplyBody,
        responses={
            202: ReplyAccepted,
            **DIALOG_REFUSALS,
            409: "window_closed: WhatsApp, 24 hours after the customer's last message (send a"
            " template); dialog_closed, not_assigned...",
            422: "empty_message, text_too_long, unknown_message (reply_to),"
            " unknown_quick_reply, quick_reply_not_for_line, unknown_template,"
            " invalid_template_variables, templates_not_supported",
        },
    )
    async def send_message(self, request: web.Request, *, body: ReplyBody) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        client_message_id, reply_to = body.client_message_id, body.reply_to
        message_id = outbound_message_id(dialog_id, viewer.operator_id, client_message_id)
        now = utc_now()
        quick_reply: Row | None = None

        def decide(dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            if dialog.message_by_client_id(viewer.operator_id, client_message_id) is not None:
                return []  # a retry: the same message, whatever became of its quick reply
            text = body.text or ""
            template = None
            if body.quick_reply_id is not None:
                text = quick_reply_text(quick_reply, dialog, viewer, self.lines)
            if body.template is not None:
                found = self.lines.channel(dialog.channel_id)
                text, template = filled_template(
                    found[1] if found else None,
                    body.template.name,
                    body.template.language,
                    body.template.variables,
                )
            return dialog.reply(
                viewer.operator_id,
                text,
                message_id=message_id,
                client_message_id=client_message_id,
                now=now,
                max_text_length=self.max_text_length(dialog.channel_id),
                reply_to=reply_to,
                is_supervisor=viewer.is_supervisor,
                load=load,
                template=template,
            )

        async def work(conn: AsyncConnection) -> Dialog:
            nonlocal quick_reply
            if body.quick_reply_id is not None:
                quick_reply = await workspace.get_quick_reply(conn, body.quick_reply_id)
            dialog = await self.execute(conn, viewer, dialog_id, decide)
            # Sent: the draft is done with, in the same transaction as the message.
            await workspace.clear_draft(conn, viewer.operator_id, dialog_id)
            return dialog

        dialog = await self.write(work)
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


def _list_query(params: ListParams) -> ListQuery:
    cursor = read_cursor(params.cursor, Cursor.decode)
    order = params.order or DEFAULT_ORDER[params.sort]
    if cursor is not None and (cursor.sort, cursor.order) != (params.sort, order):
        raise bad_cursor("the cursor is of another sort or order")
    return ListQuery(
        tab=params.tab,
        line=params.line or None,
        channel=params.channel or None,
        assignee=params.assignee or None,
        q=params.q or None,
        unanswered=params.unanswered,
        unread=params.unread,
        pinned=params.pinned,
        participant_me=params.participant == "me",
        sla=params.sla,
        sort=params.sort,
        order=params.order,
        cursor=cursor,
        limit=params.limit,
    )
