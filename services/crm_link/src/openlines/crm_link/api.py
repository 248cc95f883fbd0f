"""CRM API: read a lead, create a lead from a dialog."""

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
from openlines.kit.http import routes
from openlines.kit.http.auth import Principal, require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.kit.lines import LinesConfig

MAX_TITLE = 255


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    crm: CrmLink

    def may_see(self, principal: Principal, object_lines: list[str]) -> bool:
        own = [line.id for line in self.lines.lines_of(principal.operator_id)]
        return domain.may_see(principal.is_supervisor, own, principal.lines, object_lines)


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


def setup(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    routes.install(app, sys.modules[__name__])


@routes.get(
    "/api/v1/crm/leads/{lead_id}",
    summary="A lead",
    responses={200: LeadView, 404: "not_found: no such lead, or none of its dialogs visible"},
)
async def get_lead(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    principal = await require_principal(request)
    lead_id = domain.parse_uuid(request.match_info["lead_id"])
    if lead_id is None:
        raise not_found("lead")
    async with ctx.engine.connect() as conn:
        # Checked before reading the lead: an invisible lead and a missing one look the same.
        if not ctx.may_see(principal, await projection.lead_lines(conn, lead_id)):
            raise not_found("lead")
        body = await projection.lead_json(conn, lead_id)
    if body is None:
        raise not_found("lead")
    return web.json_response(_visible_part(ctx, principal, body))


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
    principal = await require_principal(request)
    dialog_id = domain.parse_uuid(request.match_info["dialog_id"])
    if dialog_id is None:
        raise not_found("dialog")
    title = body.title
    async with ctx.engine.begin() as conn:
        dialog = await projection.dialog(conn, dialog_id)
        if dialog is None or not ctx.may_see(principal, [dialog.facts.line_id]):
            raise not_found("dialog")
        if dialog.lead_id is not None:
            raise _already_linked(dialog.lead_id)
        try:
            lead_id = await ctx.crm.create_lead(conn, dialog.facts, principal.operator_id, title)
        except domain.AlreadyLinked as exc:  # someone else won the race just now
            raise _already_linked(exc.lead_id) from None
        lead = await projection.lead_json(conn, lead_id)
    assert lead is not None  # just written in this transaction
    lead = _visible_part(ctx, principal, lead)
    # 201: a lead was made from this dialog; 200: it joined the customer's existing lead.
    created = lead_id == domain.lead_id_for(dialog.facts.customer_id, dialog_id)
    return web.json_response(lead, status=201 if created else 200)


def _visible_part(ctx: ApiContext, principal: Principal, lead: dict[str, Any]) -> dict[str, Any]:
    """A lead may span lines: it lists only the dialogs the caller may see."""
    dialogs = [d for d in lead["dialogs"] if ctx.may_see(principal, [d["line_id"]])]
    return {**lead, "dialogs": dialogs}


def _already_linked(lead_id: Any) -> ApiError:
    return ApiError(
        409, "already_linked", "the dialog is already linked to a lead", lead_id=str(lead_id)
    )
