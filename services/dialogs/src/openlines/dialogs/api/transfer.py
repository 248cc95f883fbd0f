"""Transfer, participants and notes: handing a dialog on (to an operator, a line, the queue),
joining, inviting and leaving it, and staff-only notes with @mentions (RetailCRM's transfer
rules, Bitrix24's participants, Uspacy's read-only view; DESIGN §9)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.access import (
    Viewer,
    facts,
    require_actable,
    require_readable,
    require_transferable,
)
from openlines.dialogs.api.base import (
    BASE,
    DIALOG_REFUSALS,
    SAME_ID,
    ApiBase,
    dialog_id_of,
    links,
    refusal,
)
from openlines.dialogs.domain import (
    Dialog,
    Load,
    NotAllowed,
    UnknownLine,
    UnknownOperator,
)
from openlines.dialogs.views import DialogView
from openlines.events.envelope import EventPayload, utc_now
from openlines.events.limits import ID_MAX, MENTIONS_MAX, REASON_MAX, TEXT_MAX
from openlines.kit.http import routes

# `@ann` in a note's text; an id of the lines config may hold dots and dashes, but a sentence's
# full stop after the name is not part of it.
_MENTION = re.compile(r"(?<![\w@])@([\w.-]+)")
MAX_CLIENT_NOTE_ID = 200


class TransferBody(routes.StrictModel):
    to_operator: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    to_line: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    to_queue: Literal[True] | None = Field(default=None, description="back to its line's queue")
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    expected_assignee: str | None = Field(
        default=None,
        max_length=ID_MAX,
        description="the assignee the caller saw: 409 assignee_changed if it is no longer so",
    )

    @model_validator(mode="after")
    def _exactly_one_target(self) -> TransferBody:
        targets = [self.to_operator, self.to_line, self.to_queue]
        if sum(t is not None for t in targets) != 1:
            raise ValueError("give exactly one of to_operator, to_line, to_queue")
        return self


class JoinBody(routes.StrictModel):
    operator: str | None = Field(
        default=None,
        min_length=1,
        max_length=ID_MAX,
        description="a supervisor invites this operator; without it the caller joins",
    )


class NoteBody(routes.StrictModel):
    text: str = Field(max_length=TEXT_MAX)
    mentions: list[str] = Field(
        default_factory=list, max_length=MENTIONS_MAX, description="operator ids"
    )
    client_message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CLIENT_NOTE_ID,
        description="the client's id: a retry with the same id is the same note",
    )


class NoteAdded(BaseModel):
    """The note is recorded; the mentioned operators (explicit and `@id`) were told."""

    message_id: uuid.UUID
    mentions: list[str]


# Where a client goes next with the dialog a transfer or join answers.
_FROM_DIALOG = links(
    SAME_ID,
    GetDialog="get_dialog",
    Timeline="timeline",
    Transfer="transfer",
    Join="join",
    Leave="leave",
    Note="add_note",
)


def note_message_id(
    dialog_id: uuid.UUID, author_id: str, client_message_id: str | None
) -> uuid.UUID:
    """Stable per (dialog, author, client id) like a reply's: a retried note is the same note."""
    if client_message_id is None:
        return uuid.uuid4()
    return uuid.uuid5(dialog_id, f"note:{author_id}:{client_message_id}")


class TransferEndpoints(ApiBase):
    @routes.post(
        BASE + "/{id}/transfer",
        summary="Hand the dialog to an operator, another line, or back to the queue",
        body=TransferBody,
        responses={
            200: DialogView,
            403: "not_allowed: only the responsible operator or a supervisor of the line",
            **DIALOG_REFUSALS,
            422: "not_on_line, unknown_line, invalid_body (not exactly one target)",
        },
        links=_FROM_DIALOG,
    )
    async def transfer(self, request: web.Request, *, body: TransferBody) -> web.Response:
        target = body.to_operator

        def decide(viewer: Viewer, dialog: Dialog, load: Load | None) -> Sequence[EventPayload]:
            if body.to_line is not None and self.lines.line(body.to_line) is None:
                raise UnknownLine(f"no line {body.to_line!r}")
            expected, reason = body.expected_assignee, body.reason
            if target is not None:
                line = self.lines.line(dialog.line_id)
                # `load` is the target's (`load_of`), under the rule a take has: a supervisor,
                # or a line that allows it, may hand an operator more than their max_dialogs.
                return dialog.transfer_to_operator(
                    viewer.operator_id,
                    target,
                    line_operators=line.operators if line is not None else (),
                    by_supervisor=viewer.is_supervisor,
                    reason=reason,
                    expected_assignee=expected,
                    load=load,
                )
            if body.to_line is not None:
                return dialog.transfer_to_line(
                    viewer.operator_id, body.to_line, reason=reason, expected_assignee=expected
                )
            return dialog.transfer_to_queue(
                viewer.operator_id, reason=reason, expected_assignee=expected
            )

        # The caller may have lost access by this transfer: the answer still shows the result.
        return await self.act(request, decide, require=require_transferable, load_of=target)

    @routes.post(
        BASE + "/{id}/join",
        summary="Take part in the dialog (or, as a supervisor, invite an operator to it)",
        body=JoinBody,
        responses={
            200: DialogView,
            403: "not_allowed: not an operator of its line; only a supervisor invites",
            **DIALOG_REFUSALS,
            422: "unknown_operator",
        },
        links=_FROM_DIALOG,
    )
    async def join(self, request: web.Request, *, body: JoinBody) -> web.Response:
        invited = body.operator

        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            if invited is None or invited == viewer.operator_id:
                if not viewer.can_join(facts(dialog)):
                    raise NotAllowed("only an operator or a supervisor of its line may join")
                return dialog.join(viewer.operator_id, actor_id=viewer.operator_id)
            if not viewer.can_invite(facts(dialog)):
                raise NotAllowed("only a supervisor of its line may invite an operator")
            if self.lines.operator(invited) is None:
                raise UnknownOperator(f"no operator {invited!r} in the lines config")
            return dialog.join(invited, actor_id=viewer.operator_id)

        return await self.act(request, decide, require=require_readable)

    @routes.post(
        BASE + "/{id}/leave",
        summary="Stop taking part in the dialog",
        responses={
            200: DialogView,
            **DIALOG_REFUSALS,
            409: "last_operator: the only operator on it, or its assignee (transfer it)",
        },
        links=_FROM_DIALOG,
    )
    async def leave(self, request: web.Request) -> web.Response:
        def decide(viewer: Viewer, dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            return dialog.leave(viewer.operator_id)

        return await self.act(request, decide, require=require_readable)

    @routes.post(
        BASE + "/{id}/notes",
        summary="Add a staff-only note (never sent to the customer), mentioning colleagues",
        body=NoteBody,
        responses={
            201: NoteAdded,
            403: "not_allowed: read-only (join the dialog first)",
            **DIALOG_REFUSALS,
            422: "empty_message, unknown_operator (mentions)",
        },
    )
    async def add_note(self, request: web.Request, *, body: NoteBody) -> web.Response:
        viewer = await self.viewer(request)
        dialog_id = dialog_id_of(request)
        mentions = self.mentions_of(body.text, body.mentions)
        message_id = note_message_id(dialog_id, viewer.operator_id, body.client_message_id)
        now = utc_now()

        def decide(dialog: Dialog, _: Load | None) -> Sequence[EventPayload]:
            require_actable(viewer, dialog)
            return dialog.add_note(
                viewer.operator_id,
                body.text,
                message_id=message_id,
                mentions=mentions,
                now=now,
                max_text_length=TEXT_MAX,
                client_message_id=body.client_message_id,
            )

        async def work(conn: AsyncConnection) -> Dialog:
            return await self.execute(conn, viewer, dialog_id, decide)

        await self.write(work)
        return web.json_response({"message_id": str(message_id), "mentions": mentions}, status=201)

    def mentions_of(self, text: str, explicit: Sequence[str]) -> list[str]:
        """The explicit ids (each must be an operator of the lines config), then each `@id`
        of the text that names one; in order, once each."""
        for operator_id in explicit:
            if self.lines.operator(operator_id) is None:
                raise refusal(UnknownOperator(f"no operator {operator_id!r} in the lines config"))
        found = list(explicit)
        for match in _MENTION.finditer(text):
            name = match.group(1)
            for candidate in (name, name.rstrip(".-")):
                if self.lines.operator(candidate) is not None:
                    found.append(candidate)
                    break
        return list(dict.fromkeys(found))[:MENTIONS_MAX]
