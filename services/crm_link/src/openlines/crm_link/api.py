"""CRM API: read a lead, create a lead from a dialog.

Who may is the suite's one access policy (`openlines.kit.access`), as in dialogs: a dialog one
may not see is not found, and a lead is found when one sees one of its dialogs (CRM rights
`own`, the default) and lists only those.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.crm_link import domain, projection
from openlines.crm_link.linking import CrmLink
from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found

MAX_TITLE = 255


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    crm: CrmLink

    async def scope(self, request: web.Request) -> Scope:
        scope = Scope.of(await require_principal(request), self.lines)
        if not scope.may_use_crm():
            raise ApiError(403, "forbidden", "your CRM rights do not cover this")
        return scope


CONTEXT = web.AppKey("crm_link", ApiContext)


class LeadBody(routes.StrictModel):
    title: str | None = Field(
        default=None, max_length=MAX_TITLE, description="defaults to the dialog's title"
    )

    @field_validator("title")
    @classmethod
    def _not_blank(cls, title: str | None) -> str | None:
        if title is not None and not title.strip():
            raise ValueError("title must not be blank")
        return title.strip() if title is not None else None


class LeadDialogView(BaseModel):
    dialog_id: UUID
    line_id: str
    channel_id: str
    channel_type: str
    title: str
    opened_at: datetime
    last_activity_at: datetime
    last_message: dict[str, Any] | None


class LeadChannelView(BaseModel):
    channel_type: str
    channel_id: str
    external_user_id: str
    name: str


class LeadView(BaseModel):
    """A lead, with the dialogs the caller may see and the customer's channels."""

    id: UUID
    customer_id: UUID
    title: str
    status: str
    auto: bool
    source_dialog_id: UUID | None
    created_at: datetime
    dialogs: list[LeadDialogView]
    channels: list[LeadChannelView]


def install(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    routes.install(app, sys.modules[__name__])


@routes.get(
    "/api/v1/crm/leads/{lead_id}",
    summary="A lead",
    responses={200: LeadView, 404: "not_found: no such lead, or none of its dialogs visible"},
)
async def get_lead(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request)
    lead_id = domain.parse_uuid(request.match_info["lead_id"])
    if lead_id is None:
        raise not_found("lead")
    async with ctx.engine.connect() as conn:
        body = await projection.lead_json(conn, lead_id)
    # An invisible lead and a missing one look the same.
    if body is None or not scope.can_see_lead(map(projection.access_of, body["dialogs"])):
        raise not_found("lead")
    return web.json_response(_visible_part(scope, body))


@routes.post(
    "/api/v1/dialogs/{dialog_id}/lead",
    summary="Create a lead from a dialog (or join the customer's open lead)",
    body=LeadBody,
    responses={
        200: LeadView,
        201: LeadView,
        404: "not_found: no such dialog, or not visible to the caller",
        409: "already_linked (details.lead_id)",
    },
)
async def post_dialog_lead(request: web.Request, *, body: LeadBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request)
    dialog_id = domain.parse_uuid(request.match_info["dialog_id"])
    if dialog_id is None:
        raise not_found("dialog")
    title = body.title
    async with ctx.engine.begin() as conn:
        dialog = await projection.dialog(conn, dialog_id)
        # As dialogs answers: a dialog one may not read is not found (not even "already
        # linked"); one read but not written (a colleague's, read-only) is 403.
        if dialog is None or not scope.can_read(dialog.access):
            raise not_found("dialog")
        if not scope.can_write(dialog.access):
            raise ApiError(403, "not_allowed", "you may read this dialog but not act on it")
        if dialog.lead_id is not None:
            raise _already_linked(dialog.lead_id)
        try:
            lead_id = await ctx.crm.create_lead(conn, dialog.facts, scope.operator_id, title)
        except domain.AlreadyLinked as exc:  # someone else won the race just now
            raise _already_linked(exc.lead_id) from None
        lead = await projection.lead_json(conn, lead_id)
    assert lead is not None  # just written in this transaction
    lead = _visible_part(scope, lead)
    # 201: a lead was made from this dialog; 200: it joined the customer's existing lead.
    created = lead_id == domain.lead_id_for(dialog.facts.customer_id, dialog_id)
    return web.json_response(lead, status=201 if created else 200)


def _visible_part(scope: Scope, lead: dict[str, Any]) -> dict[str, Any]:
    """A lead may span lines and operators: it lists only the dialogs the caller may see."""
    dialogs = [d for d in lead["dialogs"] if scope.can_see(projection.access_of(d))]
    return {**lead, "dialogs": dialogs}


def _already_linked(lead_id: Any) -> ApiError:
    return ApiError(
        409, "already_linked", "the dialog is already linked to a lead", lead_id=str(lead_id)
    )
