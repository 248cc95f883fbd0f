"""CRM API: leads (create, read, convert), contacts, companies, deals (read, list, search),
a deal from the chat, a contact's card and accounts, and merging customers.

Who may is the suite's one access policy (`openlines.kit.access`): CRM rights `none` make every
CRM endpoint 404; an entity the caller may not see is not found, and lists only the dialogs
the caller sees. A dialog one may not read is not found; one read but not written is 403.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.crm_link import cards, domain, projection
from openlines.crm_link.cards import Card, Kind, Moved
from openlines.crm_link.linking import CrmLink
from openlines.events.lines import LinesConfig
from openlines.kit.access import CrmFacts, Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal
from openlines.kit.http.errors import ApiError, not_found

MAX_TITLE = 255
MAX_NAME = 255
MAX_FIELD = 128
MAX_LIST = 20
PAGE_DEFAULT = 20
PAGE_MAX = 100


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    crm: CrmLink

    async def scope(self, request: web.Request, what: str = "resource") -> Scope:
        scope = Scope.of(await require_principal(request), self.lines)
        if not scope.may_use_crm():
            raise not_found(what)  # CRM rights `none`: there is no CRM to find
        return scope


CONTEXT = web.AppKey("crm_link", ApiContext)


# -- bodies and answers --------------------------------------------------------------------------


def _stripped(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{what} must not be blank")
    return value.strip()


class LeadBody(routes.StrictModel):
    title: str | None = Field(
        default=None, max_length=MAX_TITLE, description="defaults to the dialog's title"
    )

    @field_validator("title")
    @classmethod
    def _not_blank(cls, title: str | None) -> str | None:
        return _stripped(title, "title")


class ContactDraftBody(routes.StrictModel):
    name: str | None = Field(default=None, max_length=MAX_NAME)
    phone: str | None = Field(default=None, max_length=MAX_FIELD)
    email: str | None = Field(default=None, max_length=MAX_FIELD)

    @field_validator("name", "phone", "email")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return _stripped(value, "a field")


class CompanyDraftBody(routes.StrictModel):
    name: str | None = Field(default=None, max_length=MAX_NAME)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return _stripped(value, "name")


class DealFields(routes.StrictModel):
    amount: Decimal | None = Field(
        default=None, ge=0, le=Decimal("1e13"), decimal_places=2, description="e.g. 1250.50"
    )
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217")
    stage: str | None = Field(default=None, min_length=1, max_length=64)

    def draft(self, title: str | None) -> domain.DealDraft:
        minor = None if self.amount is None else int(self.amount * 100)
        return domain.DealDraft(title, minor, self.currency, self.stage)


class DealDraftBody(DealFields):
    title: str | None = Field(default=None, max_length=MAX_TITLE, description="the lead's title")

    @field_validator("title")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return _stripped(value, "title")


class ConvertBody(routes.StrictModel):
    """At least one of contact, company, deal; fields not given are pre-filled from the lead
    and the customer's channels."""

    contact: ContactDraftBody | None = None
    company: CompanyDraftBody | None = None
    deal: DealDraftBody | None = None

    @model_validator(mode="after")
    def _something(self) -> ConvertBody:
        if self.contact is None and self.company is None and self.deal is None:
            raise ValueError("give at least one of contact, company, deal")
        return self


class DialogDealBody(DealFields):
    title: str = Field(min_length=1, max_length=MAX_TITLE)

    @field_validator("title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = _stripped(value, "title")
        assert stripped is not None
        return stripped


class ContactPatchBody(routes.StrictModel):
    name: str | None = Field(default=None, max_length=MAX_NAME)
    phones: list[str] | None = Field(default=None, max_length=MAX_LIST)
    emails: list[str] | None = Field(default=None, max_length=MAX_LIST)
    note: str | None = Field(default=None, max_length=4096)
    labels: list[str] | None = Field(
        default=None, max_length=MAX_LIST, description="`VIP`, `BAD` or custom ones"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _stripped(value, "name")

    @field_validator("phones", "emails", "labels")
    @classmethod
    def _items(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        cleaned = [v.strip() for v in values]
        if any(not v or len(v) > MAX_FIELD for v in cleaned):
            raise ValueError(f"items must be 1 to {MAX_FIELD} characters")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _something(self) -> ContactPatchBody:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class ChannelBody(routes.StrictModel):
    channel_id: str = Field(min_length=1, max_length=MAX_FIELD, description="a configured channel")
    external_user_id: str = Field(
        min_length=1, max_length=MAX_FIELD, description="the account's id in that messenger"
    )
    name: str | None = Field(default=None, max_length=MAX_NAME)


class MergeBody(BaseModel):
    model_config = routes.StrictModel.model_config
    into: UUID = Field(description="the customer who stays")
    from_: UUID = Field(alias="from", description="the duplicate, merged into `into`")


class CrmListParams(routes.QueryModel):
    q: str | None = Field(
        default=None,
        max_length=MAX_FIELD,
        description="name (or title), phone, e-mail or messenger account contains it",
    )
    cursor: str | None = Field(
        default=None, min_length=1, description="`next_cursor` of the previous page"
    )
    limit: int = Field(default=PAGE_DEFAULT, ge=1, le=PAGE_MAX)


class CrmDialogView(BaseModel):
    dialog_id: UUID
    line_id: str
    channel_id: str
    channel_type: str
    title: str
    opened_at: str
    last_activity_at: str
    last_message: dict[str, Any] | None
    message_count: int
    status: str
    assignee_id: str | None
    participants: list[str]


class CrmChannelView(BaseModel):
    channel_type: str
    channel_id: str
    external_user_id: str
    name: str


class _Linked(BaseModel):
    dialogs: list[CrmDialogView] = Field(
        description="newest activity first; only those the caller may see"
    )
    channels: list[CrmChannelView]


class LeadView(_Linked):
    id: UUID
    customer_id: UUID
    title: str
    status: str
    auto: bool
    source_dialog_id: UUID | None
    created_at: str
    converted_at: str | None


class ContactView(_Linked):
    id: UUID
    customer_id: UUID
    name: str
    phones: list[str]
    emails: list[str]
    note: str
    labels: list[str]
    source_lead_id: UUID | None
    created_at: str
    updated_at: str


class CompanyView(_Linked):
    id: UUID
    customer_id: UUID
    name: str
    source_lead_id: UUID | None
    created_at: str


class DealView(_Linked):
    id: UUID
    customer_id: UUID
    title: str
    amount: float | None
    amount_minor: int | None
    currency: str | None
    stage: str
    contact_id: UUID | None
    company_id: UUID | None
    source_lead_id: UUID | None
    source_dialog_id: UUID | None
    created_at: str


class CrmCustomerView(_Linked):
    id: UUID
    name: str
    labels: list[str]
    contact_id: UUID | None
    company_ids: list[UUID]
    lead_ids: list[UUID]
    deal_ids: list[UUID]
    created_at: str


class ConvertedView(BaseModel):
    lead: LeadView
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None


class CrmMovedView(BaseModel):
    merged_into: UUID


class _Page(BaseModel):
    next_cursor: str | None


class ContactPage(_Page):
    items: list[dict[str, Any]] = Field(description="contacts (without dialogs and channels)")


class CompanyPage(_Page):
    items: list[dict[str, Any]] = Field(description="companies (without dialogs and channels)")


class DealPage(_Page):
    items: list[dict[str, Any]] = Field(description="deals (without dialogs and channels)")


MOVED = "`{merged_into}`: merged into that one (301, `Location` names it)"


def install(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    routes.install(app, sys.modules[__name__])


# -- helpers -------------------------------------------------------------------------------------


def _id(request: web.Request, name: str, what: str) -> UUID:
    value = domain.parse_uuid(request.match_info[name])
    if value is None:
        raise not_found(what)
    return value


def _visible(scope: Scope, card: Card | None, what: str) -> dict[str, Any]:
    """The card as the caller may see it: not found when the entity is not theirs; its
    dialogs only where they may list them."""
    if card is None or not scope.can_see_crm(card.facts):
        raise not_found(what)
    linked = [entry for entry, facts in card.body["dialogs"] if scope.can_see(facts)]
    return {**card.body, "dialogs": linked}


def _moved(path: str, moved: Moved) -> web.Response:
    """301-style: the merged id names the survivor."""
    return web.json_response(
        {"merged_into": str(moved.merged_into)},
        status=301,
        headers={"Location": f"{path}/{moved.merged_into}"},
    )


_REFUSED_STATUS = {
    "not_found": 404,
    "already_converted": 409,
    "not_converted": 409,
    "not_linked": 409,
    "already_merged": 409,
    "same_customer": 422,
    "invalid_body": 422,
}


def _refused(exc: domain.Refused) -> ApiError:
    return ApiError(_REFUSED_STATUS.get(exc.code, 409), exc.code, exc.message)


async def _visible_lead(conn: AsyncConnection, scope: Scope, lead_id: UUID) -> dict[str, Any]:
    return _visible(scope, await cards.lead(conn, lead_id), "lead")


# -- leads ---------------------------------------------------------------------------------------


@routes.get(
    "/api/v1/crm/leads/{lead_id}",
    summary="A lead",
    responses={200: LeadView, 404: "not_found: no such lead, or not the caller's to see"},
)
async def get_lead(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "lead")
    lead_id = _id(request, "lead_id", "lead")
    async with ctx.engine.connect() as conn:
        return web.json_response(await _visible_lead(conn, scope, lead_id))


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
    scope = await ctx.scope(request, "dialog")
    dialog_id = _id(request, "dialog_id", "dialog")
    async with ctx.engine.begin() as conn:
        dialog = await _writable_dialog(conn, scope, dialog_id)
        if dialog.lead_id is not None:
            raise _already_linked(dialog.lead_id)
        try:
            lead_id = await ctx.crm.create_lead(
                conn, dialog.facts, scope.operator_id, body.title, dialog.customer_id
            )
        except domain.AlreadyLinked as exc:  # someone else won the race just now
            raise _already_linked(exc.lead_id) from None
        card = await cards.lead(conn, lead_id)
    assert card is not None  # just written in this transaction
    lead = {**card.body, "dialogs": [e for e, f in card.body["dialogs"] if scope.can_see(f)]}
    # 201: a lead was made from this dialog; 200: it joined the customer's existing lead.
    created = lead_id == domain.lead_id_for(UUID(lead["customer_id"]), dialog_id)
    return web.json_response(lead, status=201 if created else 200)


async def _writable_dialog(
    conn: AsyncConnection, scope: Scope, dialog_id: UUID
) -> projection.DialogRow:
    dialog = await projection.dialog(conn, dialog_id)
    # As dialogs answers: a dialog one may not read is not found (not even "already linked");
    # one read but not written (a colleague's, read-only) is 403.
    if dialog is None or not scope.can_read(dialog.access):
        raise not_found("dialog")
    if not scope.can_write(dialog.access):
        raise ApiError(403, "not_allowed", "you may read this dialog but not act on it")
    return dialog


def _already_linked(lead_id: Any) -> ApiError:
    return ApiError(
        409, "already_linked", "the dialog is already linked to a lead", lead_id=str(lead_id)
    )


@routes.post(
    "/api/v1/crm/leads/{lead_id}/convert",
    summary="Convert a lead into a contact, a company and/or a deal",
    body=ConvertBody,
    responses={
        201: ConvertedView,
        404: "not_found: no such lead, or not the caller's to see",
        409: "already_converted",
        422: "invalid_body: none of contact, company, deal given, or a bad field",
    },
)
async def convert_lead(request: web.Request, *, body: ConvertBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "lead")
    lead_id = _id(request, "lead_id", "lead")
    async with ctx.engine.begin() as conn:
        lead = await _visible_lead(conn, scope, lead_id)
        name, title, phone, email = await cards.lead_prefill(conn, lead_id)
        prefill = domain.Prefill(name=name, title=title, phone=phone, email=email)
        contact = company = deal = None
        if body.contact is not None:
            given = body.contact
            contact = domain.ContactDraft(given.name, given.phone, given.email)
        if body.company is not None:
            company = domain.CompanyDraft(body.company.name)
        if body.deal is not None:
            deal = body.deal.draft(body.deal.title)
        try:
            _, decided = await ctx.crm.on_customer(
                conn,
                UUID(lead["customer_id"]),
                lambda _, state: domain.convert_lead(
                    state,
                    lead_id,
                    scope.operator_id,
                    prefill,
                    contact=contact,
                    company=company,
                    deal=deal,
                ),
            )
        except domain.Refused as exc:
            raise _refused(exc) from None
        [converted] = [e for e in decided if isinstance(e, domain.LeadConverted)]
        lead = await _visible_lead(conn, scope, lead_id)
    return web.json_response(
        {
            "lead": lead,
            "contact_id": _s(converted.contact_id),
            "company_id": _s(converted.company_id),
            "deal_id": _s(converted.deal_id),
        },
        status=201,
    )


def _s(value: UUID | None) -> str | None:
    return None if value is None else str(value)


# -- a deal from the chat ------------------------------------------------------------------------


@routes.post(
    "/api/v1/dialogs/{dialog_id}/deal",
    summary="Create a deal from the chat (pre-filled with the customer's contact)",
    body=DialogDealBody,
    responses={
        201: DealView,
        403: "not_allowed: the dialog is the caller's to read, not to act on",
        404: "not_found: no such dialog, or not visible to the caller",
        409: "not_converted: convert the lead first (or the customer has no contact);"
        " not_linked: the dialog is not linked to a customer yet",
    },
)
async def post_dialog_deal(request: web.Request, *, body: DialogDealBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "dialog")
    dialog_id = _id(request, "dialog_id", "dialog")
    deal_id = uuid.uuid4()
    async with ctx.engine.begin() as conn:
        dialog = await _writable_dialog(conn, scope, dialog_id)
        draft = body.draft(body.title)
        try:
            await ctx.crm.on_customer(
                conn,
                dialog.customer_id,
                lambda _, state: domain.create_deal(
                    state, dialog_id, deal_id, draft, scope.operator_id
                ),
            )
        except domain.Refused as exc:
            raise _refused(exc) from None
        card = await cards.entity(conn, cards.DEAL, deal_id)
    assert isinstance(card, Card)
    return web.json_response(_visible(scope, card, "deal"), status=201)


# -- contacts, companies, deals, customers -------------------------------------------------------


async def _get_entity(request: web.Request, kind: Kind, base: str) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, kind.name)
    entity_id = _id(request, "entity_id", kind.name)
    async with ctx.engine.connect() as conn:
        card = await cards.entity(conn, kind, entity_id)
    if isinstance(card, Moved):
        return _moved(base, card)
    return web.json_response(_visible(scope, card, kind.name))


@routes.get(
    "/api/v1/crm/contacts/{entity_id}",
    summary="A contact: its card, channels and dialogs",
    responses={200: ContactView, 301: MOVED, 404: "not_found"},
)
async def get_contact(request: web.Request) -> web.Response:
    return await _get_entity(request, cards.CONTACT, "/api/v1/crm/contacts")


@routes.get(
    "/api/v1/crm/companies/{entity_id}",
    summary="A company",
    responses={200: CompanyView, 404: "not_found"},
)
async def get_company(request: web.Request) -> web.Response:
    return await _get_entity(request, cards.COMPANY, "/api/v1/crm/companies")


@routes.get(
    "/api/v1/crm/deals/{entity_id}",
    summary="A deal",
    responses={200: DealView, 404: "not_found"},
)
async def get_deal(request: web.Request) -> web.Response:
    return await _get_entity(request, cards.DEAL, "/api/v1/crm/deals")


@routes.get(
    "/api/v1/crm/customers/{customer_id}",
    summary="A customer: one person, all their accounts, contact, leads, deals and dialogs",
    responses={200: CrmCustomerView, 301: MOVED, 404: "not_found"},
)
async def get_customer(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "customer")
    customer_id = _id(request, "customer_id", "customer")
    async with ctx.engine.connect() as conn:
        card = await cards.customer(conn, customer_id)
    if isinstance(card, Moved):
        return _moved("/api/v1/crm/customers", card)
    return web.json_response(_visible(scope, card, "customer"))


async def _list(request: web.Request, kind: Kind, params: CrmListParams) -> web.Response:
    """Keyset pages, newest first, of the entities the caller may see."""
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, kind.name)
    after = None
    if params.cursor:
        after = cards.decode_cursor(params.cursor)
        if after is None:
            raise ApiError(400, "bad_cursor", "not a cursor this API returned")
    items: list[dict[str, Any]] = []
    batch = max(params.limit, 50)
    more = True
    async with ctx.engine.connect() as conn:
        while more and len(items) < params.limit:
            rows = await cards.page(conn, kind, q=params.q, after=after, size=batch)
            more = len(rows) == batch
            facts = await cards.facts_of_customers(conn, (r.customer_id for r in rows))
            for i, row in enumerate(rows):
                after = (row.created_at, row._mapping[kind.key])
                entity = CrmFacts(tuple(row.responsible), facts[row.customer_id])
                if scope.can_see_crm(entity):
                    items.append(kind.body(row))
                if len(items) == params.limit:
                    more = more or i < len(rows) - 1
                    break
    cursor = cards.encode_cursor(*after) if more and after is not None else None
    return web.json_response({"items": items, "next_cursor": cursor})


@routes.get(
    "/api/v1/crm/contacts",
    summary="Contacts, newest first, searched with q",
    query=CrmListParams,
    responses={200: ContactPage, 400: "bad_cursor, invalid_query"},
)
async def list_contacts(request: web.Request, *, query: CrmListParams) -> web.Response:
    return await _list(request, cards.CONTACT, query)


@routes.get(
    "/api/v1/crm/companies",
    summary="Companies, newest first, searched with q",
    query=CrmListParams,
    responses={200: CompanyPage, 400: "bad_cursor, invalid_query"},
)
async def list_companies(request: web.Request, *, query: CrmListParams) -> web.Response:
    return await _list(request, cards.COMPANY, query)


@routes.get(
    "/api/v1/crm/deals",
    summary="Deals, newest first, searched with q",
    query=CrmListParams,
    responses={200: DealPage, 400: "bad_cursor, invalid_query"},
)
async def list_deals(request: web.Request, *, query: CrmListParams) -> web.Response:
    return await _list(request, cards.DEAL, query)


async def _contact_customer(conn: AsyncConnection, scope: Scope, contact_id: UUID) -> UUID:
    """The customer of a contact the caller may see (a merged one: 409 `merged`)."""
    card = await cards.entity(conn, cards.CONTACT, contact_id)
    if isinstance(card, Moved):
        raise ApiError(409, "merged", "the contact was merged", merged_into=str(card.merged_into))
    return UUID(_visible(scope, card, "contact")["customer_id"])


@routes.patch(
    "/api/v1/crm/contacts/{entity_id}",
    summary="Edit a contact: name, phones, e-mails, note, labels",
    body=ContactPatchBody,
    responses={200: ContactView, 404: "not_found", 409: "merged (details.merged_into)"},
)
async def patch_contact(request: web.Request, *, body: ContactPatchBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "contact")
    contact_id = _id(request, "entity_id", "contact")
    given = body.model_fields_set

    def listed(name: str) -> tuple[str, ...] | None:
        value = getattr(body, name)
        return tuple(value) if name in given and value is not None else None

    patch = domain.ContactPatch(
        name=body.name,
        phones=listed("phones"),
        emails=listed("emails"),
        note=body.note,
        labels=listed("labels"),
    )
    async with ctx.engine.begin() as conn:
        customer_id = await _contact_customer(conn, scope, contact_id)
        try:
            await ctx.crm.on_customer(
                conn,
                customer_id,
                lambda _, state: domain.update_contact(state, contact_id, patch, scope.operator_id),
            )
        except domain.Refused as exc:
            raise _refused(exc) from None
        card = await cards.entity(conn, cards.CONTACT, contact_id)
    assert isinstance(card, Card)
    return web.json_response(_visible(scope, card, "contact"))


@routes.post(
    "/api/v1/crm/contacts/{entity_id}/channels",
    summary="Link a messenger account to a contact (one person across messengers)",
    body=ChannelBody,
    responses={
        200: ContactView,
        404: "not_found",
        409: "already_merged: the account is another customer's, merged elsewhere; merged",
        422: "unknown_channel",
    },
)
async def post_contact_channel(request: web.Request, *, body: ChannelBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "contact")
    contact_id = _id(request, "entity_id", "contact")
    found = ctx.lines.channel(body.channel_id)
    if found is None:
        raise ApiError(422, "unknown_channel", f"no channel {body.channel_id!r} is configured")
    channel = found[1]
    account = domain.Account(
        channel.type, channel.id, body.external_user_id, body.name or body.external_user_id
    )
    async with ctx.engine.begin() as conn:
        customer_id = await _contact_customer(conn, scope, contact_id)
        if account.customer_id != customer_id:
            try:
                await ctx.crm.merge(
                    conn, customer_id, account.customer_id, scope.operator_id, account
                )
            except domain.Refused as exc:
                raise _refused(exc) from None
        card = await cards.entity(conn, cards.CONTACT, contact_id)
    assert isinstance(card, Card)
    return web.json_response(_visible(scope, card, "contact"))


@routes.post(
    "/api/v1/crm/customers/merge",
    summary="Merge a duplicate customer into another (RetailCRM): idempotent",
    body=MergeBody,
    responses={
        200: CrmCustomerView,
        404: "not_found: either customer unknown or not the caller's to see",
        409: "already_merged: `from` was merged into another customer",
        422: "same_customer, invalid_body",
    },
)
async def merge_customers(request: web.Request, *, body: MergeBody) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request, "customer")
    async with ctx.engine.begin() as conn:
        for customer_id in (body.into, body.from_):
            target = await ctx.crm.survivor(conn, customer_id)
            card = None if target is None else await cards.customer(conn, target.customer_id)
            if isinstance(card, Moved):  # merged a moment ago: the survivor's rights decide
                card = await cards.customer(conn, card.merged_into)
            _visible(scope, card if isinstance(card, Card) else None, "customer")
        try:
            into = await ctx.crm.merge(conn, body.into, body.from_, scope.operator_id)
        except domain.Refused as exc:
            raise _refused(exc) from None
        card = await cards.customer(conn, into)
    assert isinstance(card, Card)
    return web.json_response(_visible(scope, card, "customer"))
