"""The Customer aggregate and its decisions, free of I/O.

A customer is one messenger identity, (channel_type, external_user_id). Its stream (stream_id =
customer id) holds everything CRM learns about it: the identity and the channels it was seen
on, its leads, and the dialogs linked to them. The customer id is derived from the identity, so
two writers racing over a new identity meet on the same stream and optimistic concurrency lets
exactly one of them create it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from uuid import UUID

from openlines.events.catalog import (
    ChannelType,
    CompanyCreated,
    ContactCreated,
    ContactUpdated,
    CustomerIdentified,
    CustomersMerged,
    DealCreated,
    DialogLinkedToCrm,
    LeadConverted,
    LeadCreated,
)
from openlines.events.envelope import EventPayload

# Fixed forever: changing it changes every customer id.
CUSTOMER_NAMESPACE = UUID("3f8a3a52-5c0e-4d0a-9a63-6f4c1b2d7e10")


def customer_id_for(channel_type: str, external_user_id: str) -> UUID:
    return uuid.uuid5(CUSTOMER_NAMESPACE, f"{channel_type}\x1f{external_user_id}")


def lead_id_for(customer_id: UUID, source_dialog_id: UUID) -> UUID:
    # A dialog yields at most one lead: retries of the same decision agree on its id.
    return uuid.uuid5(customer_id, f"lead\x1f{source_dialog_id}")


@dataclass(frozen=True)
class DialogFacts:
    """What crm-link knows of a dialog (from its DialogOpened)."""

    dialog_id: UUID
    line_id: str
    channel_id: str
    channel_type: ChannelType
    external_user_id: str
    customer_name: str
    title: str
    customer_phone: str | None = None
    customer_email: str | None = None

    @property
    def customer_id(self) -> UUID:
        return customer_id_for(self.channel_type, self.external_user_id)

    @property
    def account(self) -> Account:
        return Account(
            self.channel_type, self.channel_id, self.external_user_id, self.customer_name
        )


@dataclass(frozen=True)
class Account:
    """A messenger account: one identity seen on one channel."""

    channel_type: ChannelType
    channel_id: str
    external_user_id: str
    name: str

    @property
    def customer_id(self) -> UUID:
        return customer_id_for(self.channel_type, self.external_user_id)

    @property
    def key(self) -> str:
        return account_key(self.channel_id, self.external_user_id)


def account_key(channel_id: str, external_user_id: str) -> str:
    return f"{channel_id}:{external_user_id}"


@dataclass(frozen=True)
class Customer:
    customer_id: UUID
    accounts: frozenset[str] = frozenset()
    """The messenger accounts (`account_key`) the customer was seen on or linked to."""
    lead_ids: tuple[UUID, ...] = ()
    dialog_leads: Mapping[UUID, UUID | None] = field(default_factory=dict)
    """Every linked dialog and its lead (None: linked to the customer only)."""
    converted: frozenset[UUID] = frozenset()
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_ids: tuple[UUID, ...] = ()
    merged_into: UUID | None = None
    """Set once merged into another customer: from then on, that one is this person."""
    merged_from: frozenset[UUID] = frozenset()

    @property
    def current_lead(self) -> UUID | None:
        return self.lead_ids[-1] if self.lead_ids else None


def evolve(state: Customer | None, event: EventPayload) -> Customer | None:
    if isinstance(event, CustomerIdentified):
        key = account_key(event.channel_id, event.external_user_id)
        if state is None:
            return Customer(event.customer_id, frozenset({key}))
        return replace(state, accounts=state.accounts | {key})
    if state is None:
        return None  # nothing precedes CustomerIdentified in a customer stream
    if isinstance(event, LeadCreated):
        return replace(state, lead_ids=(*state.lead_ids, event.lead_id))
    if isinstance(event, DialogLinkedToCrm):
        # A link names what changed (a contact, a deal...): the dialog keeps its lead.
        lead = event.lead_id or state.dialog_leads.get(event.dialog_id)
        return replace(state, dialog_leads={**state.dialog_leads, event.dialog_id: lead})
    if isinstance(event, LeadConverted):
        return replace(state, converted=state.converted | {event.lead_id})
    if isinstance(event, ContactCreated):
        return replace(state, contact_id=event.contact_id)
    if isinstance(event, CompanyCreated):
        return replace(state, company_id=event.company_id)
    if isinstance(event, DealCreated):
        return replace(state, deal_ids=(*state.deal_ids, event.deal_id))
    if isinstance(event, CustomersMerged):
        return _merged(state, event)
    return state


def _merged(state: Customer, event: CustomersMerged) -> Customer:
    """The same event closes the merged customer's stream and opens the survivor's to what
    moved (its dialogs follow as DialogLinkedToCrm)."""
    if event.merged_customer_id == state.customer_id:
        return replace(state, merged_into=event.customer_id)
    return replace(
        state,
        accounts=state.accounts | set(event.accounts),
        lead_ids=(*event.lead_ids, *state.lead_ids),  # the survivor's own lead stays current
        deal_ids=(*state.deal_ids, *event.deal_ids),
        contact_id=event.contact_id or state.contact_id,
        company_id=event.company_id or state.company_id,
        merged_from=state.merged_from | {event.merged_customer_id},
    )


def replay(events: Iterable[EventPayload]) -> Customer | None:
    state: Customer | None = None
    for event in events:
        state = evolve(state, event)
    return state


class Merged(Exception):
    """The customer was merged: the decision belongs to the survivor's stream."""

    def __init__(self, into: UUID) -> None:
        super().__init__(f"merged into customer {into}")
        self.into = into


def on_dialog_opened(
    state: Customer | None, dialog: DialogFacts, auto_lead: bool, customer_id: UUID | None = None
) -> list[EventPayload]:
    """Identify the customer and link the dialog: to the customer's lead if it has one, to a new
    lead if the line creates them automatically, otherwise to the customer alone.

    `customer_id` is the stream decided on: the dialog's own identity, or the customer it was
    merged into (raises `Merged` when that one was merged in turn)."""
    customer_id = customer_id or dialog.customer_id
    if state is not None and state.merged_into is not None:
        raise Merged(state.merged_into)
    if state is not None and dialog.dialog_id in state.dialog_leads:
        return []  # already linked (a redelivery, or a retry after losing a race)
    events: list[EventPayload] = []
    if state is None or dialog.account.key not in state.accounts:
        events.append(_identified(dialog, customer_id, is_new=state is None))
    lead_id = state.current_lead if state is not None else None
    if lead_id is None and auto_lead:
        lead_id = lead_id_for(customer_id, dialog.dialog_id)
        events.append(_lead(customer_id, lead_id, dialog, dialog.title, auto=True, actor=None))
    events.append(
        DialogLinkedToCrm(
            dialog_id=dialog.dialog_id,
            customer_id=customer_id,
            lead_id=lead_id,
            contact_id=state.contact_id if state is not None else None,
            company_id=state.company_id if state is not None else None,
        )
    )
    return events


def _identified(dialog: DialogFacts, customer_id: UUID, *, is_new: bool) -> CustomerIdentified:
    """The dialog's customer, seen on the dialog's channel (a new customer, or a new account
    of a known one)."""
    return CustomerIdentified(
        customer_id=customer_id,
        channel_type=dialog.channel_type,
        channel_id=dialog.channel_id,
        external_user_id=dialog.external_user_id,
        name=dialog.customer_name,
        dialog_id=dialog.dialog_id,
        is_new=is_new,
    )


class AlreadyLinked(Exception):
    def __init__(self, lead_id: UUID) -> None:
        super().__init__(f"the dialog is already linked to lead {lead_id}")
        self.lead_id = lead_id


def create_lead(
    state: Customer | None,
    dialog: DialogFacts,
    actor_id: str,
    title: str | None,
    customer_id: UUID | None = None,
) -> list[EventPayload]:
    """An operator creates a lead from a dialog that has none (auto-lead off on its line).

    A customer who has a lead already (from another dialog) gets no second one: the dialog
    joins that lead (DESIGN §9, no duplicate leads).
    """
    if state is not None and state.merged_into is not None:
        raise Merged(state.merged_into)
    linked = state.dialog_leads.get(dialog.dialog_id) if state is not None else None
    if linked is not None:
        raise AlreadyLinked(linked)
    customer_id = customer_id or dialog.customer_id
    existing = state.current_lead if state is not None else None
    if existing is not None:
        return [
            DialogLinkedToCrm(dialog_id=dialog.dialog_id, customer_id=customer_id, lead_id=existing)
        ]
    events: list[EventPayload] = []
    if state is None:  # crm-link learnt of the dialog but the customer write was lost: heal
        events.append(_identified(dialog, customer_id, is_new=True))
    lead_id = lead_id_for(customer_id, dialog.dialog_id)
    events.append(
        _lead(customer_id, lead_id, dialog, title or dialog.title, auto=False, actor=actor_id)
    )
    events.append(
        DialogLinkedToCrm(dialog_id=dialog.dialog_id, customer_id=customer_id, lead_id=lead_id)
    )
    return events


def _lead(
    customer_id: UUID,
    lead_id: UUID,
    dialog: DialogFacts,
    title: str,
    *,
    auto: bool,
    actor: str | None,
) -> LeadCreated:
    return LeadCreated(
        lead_id=lead_id,
        customer_id=customer_id,
        title=title,
        source_dialog_id=dialog.dialog_id,
        channel_type=dialog.channel_type,
        auto=auto,
        actor_id=actor,
    )


# -- conversion, deals, contacts ---------------------------------------------------------------


class Refused(Exception):
    """A CRM decision refused: `code` is the API's machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ContactDraft:
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class CompanyDraft:
    name: str | None = None


@dataclass(frozen=True)
class DealDraft:
    title: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class Prefill:
    """What the lead and the customer's channels already tell (Uspacy fills the form)."""

    name: str
    title: str
    phone: str | None = None
    email: str | None = None


def entity_id(owner: UUID, kind: str, source: UUID) -> UUID:
    """A contact, company or deal made from `source` (a lead, a dialog) once: retries of the
    same decision agree on its id."""
    return uuid.uuid5(owner, f"{kind}\x1f{source}")


def convert_lead(
    state: Customer | None,
    lead_id: UUID,
    actor_id: str,
    prefill: Prefill,
    *,
    contact: ContactDraft | None = None,
    company: CompanyDraft | None = None,
    deal: DealDraft | None = None,
) -> list[EventPayload]:
    """The lead becomes a contact, a company and/or a deal, once. A customer has one contact
    and one company: a conversion reuses theirs when they have one (a merged-in lead)."""
    if state is not None and state.merged_into is not None:
        raise Merged(state.merged_into)
    if state is None or lead_id not in state.lead_ids:
        raise Refused("not_found", "no such lead")
    if lead_id in state.converted:
        raise Refused("already_converted", "the lead is converted already")
    if contact is None and company is None and deal is None:
        raise Refused("invalid_body", "give at least one of contact, company, deal")
    customer_id = state.customer_id
    events: list[EventPayload] = []
    contact_id, company_id = state.contact_id, state.company_id
    if contact is not None and contact_id is None:
        contact_id = entity_id(customer_id, "contact", lead_id)
        events.append(
            ContactCreated(
                contact_id=contact_id,
                customer_id=customer_id,
                name=contact.name or prefill.name,
                phone=contact.phone or prefill.phone,
                email=contact.email or prefill.email,
                source_lead_id=lead_id,
                actor_id=actor_id,
            )
        )
    if company is not None and company_id is None:
        company_id = entity_id(customer_id, "company", lead_id)
        events.append(
            CompanyCreated(
                company_id=company_id,
                customer_id=customer_id,
                name=company.name or prefill.name,
                source_lead_id=lead_id,
                actor_id=actor_id,
            )
        )
    deal_id = None
    if deal is not None:
        deal_id = entity_id(customer_id, "deal", lead_id)
        events.append(
            _deal(
                customer_id,
                deal_id,
                deal,
                prefill.title,
                contact_id=contact_id,
                company_id=company_id,
                lead_id=lead_id,
                dialog_id=None,
                actor_id=actor_id,
            )
        )
    events.append(
        LeadConverted(
            lead_id=lead_id,
            customer_id=customer_id,
            contact_id=contact_id if contact is not None else None,
            company_id=company_id if company is not None else None,
            deal_id=deal_id,
            actor_id=actor_id,
        )
    )
    # One link (one staff-only system line) per entity, in each of the lead's dialogs.
    lead_dialogs = [d for d, lead in state.dialog_leads.items() if lead == lead_id]
    for field_name, value in (
        ("contact_id", contact_id if contact is not None else None),
        ("company_id", company_id if company is not None else None),
        ("deal_id", deal_id),
    ):
        if value is None:
            continue
        for dialog_id in lead_dialogs:
            link = {"dialog_id": dialog_id, "customer_id": customer_id, field_name: value}
            events.append(DialogLinkedToCrm.model_validate(link))
    return events


def create_deal(
    state: Customer | None, dialog_id: UUID, deal_id: UUID, draft: DealDraft, actor_id: str
) -> list[EventPayload]:
    """A deal from the chat: once the dialog's lead is converted, or when the customer already
    has a contact, which the deal is made for (Uspacy)."""
    if state is not None and state.merged_into is not None:
        raise Merged(state.merged_into)
    if state is None or dialog_id not in state.dialog_leads:
        raise Refused("not_linked", "the dialog is not linked to a CRM customer yet")
    lead_id = state.dialog_leads[dialog_id]
    converted = lead_id is not None and lead_id in state.converted
    if not converted and state.contact_id is None:
        raise Refused(
            "not_converted", "convert the dialog's lead first (or link the customer's contact)"
        )
    customer_id = state.customer_id
    return [
        _deal(
            customer_id,
            deal_id,
            draft,
            draft.title or "",
            contact_id=state.contact_id,
            company_id=state.company_id,
            lead_id=lead_id,
            dialog_id=dialog_id,
            actor_id=actor_id,
        ),
        DialogLinkedToCrm(dialog_id=dialog_id, customer_id=customer_id, deal_id=deal_id),
    ]


def _deal(
    customer_id: UUID,
    deal_id: UUID,
    draft: DealDraft,
    title: str,
    *,
    contact_id: UUID | None,
    company_id: UUID | None,
    lead_id: UUID | None,
    dialog_id: UUID | None,
    actor_id: str,
) -> DealCreated:
    return DealCreated(
        deal_id=deal_id,
        customer_id=customer_id,
        title=draft.title or title,
        amount_minor=draft.amount_minor,
        currency=draft.currency,
        stage=draft.stage,
        contact_id=contact_id,
        company_id=company_id,
        source_lead_id=lead_id,
        source_dialog_id=dialog_id,
        actor_id=actor_id,
    )


@dataclass(frozen=True)
class ContactPatch:
    name: str | None = None
    phones: tuple[str, ...] | None = None
    emails: tuple[str, ...] | None = None
    note: str | None = None
    labels: tuple[str, ...] | None = None


def update_contact(
    state: Customer | None, contact_id: UUID, patch: ContactPatch, actor_id: str
) -> list[EventPayload]:
    if state is not None and state.merged_into is not None:
        raise Merged(state.merged_into)
    if state is None or state.contact_id != contact_id:
        raise Refused("not_found", "no such contact")
    return [
        ContactUpdated(
            contact_id=contact_id,
            customer_id=state.customer_id,
            name=patch.name,
            phones=patch.phones,
            emails=patch.emails,
            note=patch.note,
            labels=patch.labels,
            actor_id=actor_id,
        )
    ]


# -- one person across messengers: merging customers -------------------------------------------


def merge_out(
    source: Customer | None,
    into: UUID,
    actor_id: str | None,
    account: Account | None = None,
    *,
    into_contact: UUID | None = None,
    into_company: UUID | None = None,
) -> list[EventPayload]:
    """The merged customer's side (its own stream): from now on it is `into`. Idempotent:
    merged into `into` already, nothing more. `account` identifies a customer never seen yet
    (an account linked by hand before it wrote): its stream starts here."""
    events: list[EventPayload] = []
    if source is None:
        if account is None:
            raise Refused("not_found", "no such customer")
        events.append(
            CustomerIdentified(
                customer_id=account.customer_id,
                channel_type=account.channel_type,
                channel_id=account.channel_id,
                external_user_id=account.external_user_id,
                name=account.name,
                is_new=True,
            )
        )
        source = evolve(None, events[0])
        assert source is not None
    if source.customer_id == into:
        raise Refused("same_customer", "a customer cannot be merged into itself")
    if source.merged_into == into:
        return []
    if source.merged_into is not None:
        raise Merged(source.merged_into)
    events.append(merge_event(source, into, actor_id, into_contact, into_company))
    return events


def merge_event(
    source: Customer,
    into: UUID,
    actor_id: str | None,
    into_contact: UUID | None,
    into_company: UUID | None,
) -> CustomersMerged:
    return CustomersMerged(
        customer_id=into,
        merged_customer_id=source.customer_id,
        actor_id=actor_id,
        lead_ids=source.lead_ids,
        deal_ids=source.deal_ids,
        accounts=tuple(sorted(source.accounts)),
        contact_id=into_contact or source.contact_id,
        merged_contact_id=source.contact_id if into_contact is not None else None,
        company_id=into_company or source.company_id,
    )


def merge_in(target: Customer | None, source: Customer, actor_id: str | None) -> list[EventPayload]:
    """The survivor's side: it takes what moved, and every dialog of the merged customer is
    linked to it (open or closed), so that each shows the survivor. Idempotent."""
    if target is None:
        raise Refused("not_found", "no such customer")
    if target.merged_into is not None:
        raise Merged(target.merged_into)
    if source.customer_id in target.merged_from:
        return []
    merged = merge_event(source, target.customer_id, actor_id, target.contact_id, target.company_id)
    events: list[EventPayload] = [merged]
    for dialog_id, lead_id in source.dialog_leads.items():
        events.append(
            DialogLinkedToCrm(
                dialog_id=dialog_id,
                customer_id=target.customer_id,
                lead_id=lead_id,
                contact_id=merged.contact_id,
                company_id=merged.company_id,
            )
        )
    return events


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
