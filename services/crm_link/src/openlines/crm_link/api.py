"""CRM API: read a lead, create a lead from a dialog.

Who may is the suite's one access policy (`openlines.kit.access`), as in dialogs: a dialog one
may not see is not found, and a lead is found when one sees one of its dialogs (CRM rights
`own`, the default) and lists only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.crm_link import domain, projection
from openlines.crm_link.linking import CrmLink
from openlines.kit.access import Scope
from openlines.kit.http.app import read_json
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found
from openlines.kit.lines import LinesConfig

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


def setup(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    app.router.add_get("/api/v1/crm/leads/{lead_id}", get_lead)
    app.router.add_post("/api/v1/dialogs/{dialog_id}/lead", post_dialog_lead)


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


async def post_dialog_lead(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request)
    dialog_id = domain.parse_uuid(request.match_info["dialog_id"])
    if dialog_id is None:
        raise not_found("dialog")
    title = await _optional_title(request)
    async with ctx.engine.begin() as conn:
        dialog = await projection.dialog(conn, dialog_id)
        # As dialogs answers: a dialog one may not see is not found (not even "already linked").
        if dialog is None or not scope.can_see(dialog.access):
            raise not_found("dialog")
        if not scope.can_act(dialog.access):
            raise ApiError(403, "forbidden", "you may see this dialog but not act on it")
        if dialog.lead_id is not None:
            raise _already_linked(dialog.lead_id)
        try:
            lead_id = await ctx.crm.create_lead(conn, dialog.facts, scope.operator_id, title)
        except domain.AlreadyLinked as exc:  # someone else won the race just now
            raise _already_linked(exc.lead_id) from None
        body = await projection.lead_json(conn, lead_id)
    assert body is not None  # just written in this transaction
    body = _visible_part(scope, body)
    # 201: a lead was made from this dialog; 200: it joined the customer's existing lead.
    created = lead_id == domain.lead_id_for(dialog.facts.customer_id, dialog_id)
    return web.json_response(body, status=201 if created else 200)


def _visible_part(scope: Scope, lead: dict[str, Any]) -> dict[str, Any]:
    """A lead may span lines and operators: it lists only the dialogs the caller may see."""
    dialogs = [d for d in lead["dialogs"] if scope.can_see(projection.access_of(d))]
    return {**lead, "dialogs": dialogs}


def _already_linked(lead_id: Any) -> ApiError:
    return ApiError(
        409, "already_linked", "the dialog is already linked to a lead", lead_id=str(lead_id)
    )


async def _optional_title(request: web.Request) -> str | None:
    if not request.can_read_body:
        return None
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    title = body.get("title")
    if title is None:
        return None
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise ApiError(400, "invalid_title", f"title must be 1 to {MAX_TITLE} characters")
    return title.strip()
