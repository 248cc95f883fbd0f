"""Renaming and pinning a dialog, closing it into a new one, and editing or deleting what an
operator sent (outbound applies those at the provider)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import queries
from openlines.dialogs.access import Viewer, require_actable
from openlines.dialogs.api.base import BASE, DIALOG_REFUSALS, ApiBase, dialog_id_of, path_uuid
from openlines.dialogs.domain import Dialog, Load, NewerDialogExists
from openlines.dialogs.store import lock_conversation
from openlines.dialogs.views import DialogView, MessageView, message_json
from openlines.events.envelope import EventPayload, utc_now
from openlines.events.limits import NAME_MAX
from openlines.kit.http import routes
from openlines.kit.http.errors import ApiError

MESSAGE = BASE + "/{id}/messages/{message_id}"

# An edit or deletion of the path's message, decided on its dialog.
MessageDecision = Callable[[Viewer, Dialog, uuid.UUID], Sequence[EventPayload]]

MESSAGE_REFUSALS: dict[int, routes.ResponseSpec] = {
    403: "not_author: only the author or a supervisor may change it; forbidden",
    404: "not_found (dialog) or message_not_found",
    409: (
        "window_expired: past the channel's window (Telegram deletes: 48 h); not_changeable "
        "(not an operator message); dialog_closed; message_deleted; not_supported (channel)"
    ),
    503: DIALOG_REFUSALS[503],
}


PIN_REFUSALS = {**DIALOG_REFUSALS, 409: f"pinned_to_other, {DIALOG_REFUSALS[409]}"}


class RenameBody(routes.StrictModel):
    title: str = Field(min_length=1, max_length=NAME_MAX, description="staff-only")


class EditBody(routes.StrictModel):
    text: str = Field(min_length=1, description="the message's new text")


class CloseBody(routes.StrictModel):
    open_new: bool = Field(
        default=False,
        description="close and start a new dialog in the same conversation, assigned to you",
    )


async def close_and_open_new(api: ApiBase, request: web.Request) -> web.Response:
    """`POST …/close {"open_new": true}` (Bitrix24's "close and start new"): the dialog closes
    and a new one, assigned to the caller, continues the conversation, so the customer's next
    message goes to it. Answers 201 with the new dialog."""
    viewer = await api.viewer(request)
    dialog_id = dialog_id_of(request)

    async def work(conn: AsyncConnection) -> Any:
        # The conversation's lock first, as reopen and the inbound path take it: a customer's
        # message cannot slip in between the close and the new dialog. Its key comes from the
        # dialog's own stream, never from the rebuildable read model.
        old = await api.writer.load(conn, dialog_id)
        latest = await lock_conversation(conn, old.conversation_key) if old.exists else None

        def close(dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            events = dialog.close_for_new(viewer.operator_id, is_supervisor=viewer.is_supervisor)
            if latest is not None and latest != dialog.id:
                raise NewerDialogExists(f"the customer has a newer dialog ({latest})")
            return events

        # Derived from the old stream's version: a dialog reopened and closed into a new one
        # again gets another.
        new_id = uuid.uuid5(dialog_id, f"continued-after:{old.version}")
        closed = await api.execute(conn, viewer, dialog_id, close)
        await api.execute(
            conn,
            viewer,
            new_id,
            lambda d, load: d.open_after(closed, viewer.operator_id, load=load),
        )
        return await queries.get_dialog(conn, new_id, viewer)

    row = await api.write(work)
    return api.dialog_response(row, viewer, status=201)


class EditEndpoints(ApiBase):
    @routes.post(
        BASE + "/{id}/rename",
        summary="Rename the dialog (the title only staff see)",
        body=RenameBody,
        responses={200: DialogView, **DIALOG_REFUSALS, 422: "empty_title"},
    )
    async def rename(self, request: web.Request, *, body: RenameBody) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.rename(viewer.operator_id, body.title)

        return await self.act(request, decide)

    @routes.post(
        BASE + "/{id}/pin",
        summary="Pin to me: the customer's next dialogs on the line come to me first",
        responses={200: DialogView, **PIN_REFUSALS},
    )
    async def pin(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.pin(viewer.operator_id, is_supervisor=viewer.is_supervisor)

        return await self.act(request, decide)

    @routes.post(
        BASE + "/{id}/unpin",
        summary="Lift the dialog's pin (its holder, or a supervisor)",
        responses={200: DialogView, **PIN_REFUSALS},
    )
    async def unpin(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.unpin(viewer.operator_id, is_supervisor=viewer.is_supervisor)

        return await self.act(request, decide)

    # -- the messages an operator sent ---------------------------------------------------------

    @routes.patch(
        MESSAGE,
        summary="Edit a message sent to the customer (the author, or a supervisor)",
        body=EditBody,
        responses={200: MessageView, **MESSAGE_REFUSALS, 422: "empty_message, text_too_long"},
    )
    async def edit_message(self, request: web.Request, *, body: EditBody) -> web.Response:
        now = utc_now()

        def decide(viewer: Viewer, dialog: Dialog, message_id: uuid.UUID) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.edit_outbound(
                viewer.operator_id,
                message_id,
                body.text,
                now=now,
                max_text_length=self.max_text_length(dialog.channel_id),
                is_supervisor=viewer.is_supervisor,
            )

        return await self._change(request, decide)

    @routes.delete(
        MESSAGE,
        summary="Delete a message sent to the customer (the author, or a supervisor)",
        responses={200: MessageView, **MESSAGE_REFUSALS},
    )
    async def delete_message(self, request: web.Request) -> web.Response:
        now = utc_now()

        def decide(viewer: Viewer, dialog: Dialog, message_id: uuid.UUID) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.delete_outbound(
                viewer.operator_id, message_id, now=now, is_supervisor=viewer.is_supervisor
            )

        return await self._change(request, decide)

    async def _change(self, request: web.Request, decide: MessageDecision) -> web.Response:
        """Decide an edit or deletion; answers with the message as the timeline now shows it
        (outbound applies the change at the provider after this)."""
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        message_id = _message_id_of(request)

        async def work(conn: AsyncConnection) -> Any:
            await self.execute(conn, viewer, dialog_id, lambda d, _: decide(viewer, d, message_id))
            return await queries.get_message(conn, dialog_id, message_id)

        row = await self.write(work)
        return web.json_response(message_json(row))


def _message_id_of(request: web.Request) -> uuid.UUID:
    return path_uuid(request, "message_id", ApiError(404, "message_not_found", "no such message"))
