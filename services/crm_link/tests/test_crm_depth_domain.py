"""The Customer aggregate's CRM decisions: convert once, deal preconditions, contact edits,
merges (idempotent, what moves, where a merged customer's dialogs go)."""

from __future__ import annotations

import uuid

import pytest

from openlines.crm_link import domain
from openlines.crm_link.domain import (
    Account,
    CompanyDraft,
    ContactDraft,
    ContactPatch,
    Customer,
    DealDraft,
    DialogFacts,
    Prefill,
    Refused,
)
from openlines.events.catalog import (
    ChannelType,
    CompanyCreated,
    ContactCreated,
    ContactUpdated,
    CustomersMerged,
    DealCreated,
    DialogLinkedToCrm,
    LeadConverted,
)
from openlines.events.envelope import EventPayload

PREFILL = Prefill(name="Carla", title="Carla (tg-demo)", phone="+380 50 123 45 67", email=None)


def facts(n: int, user: str = "42", channel_id: str = "tg-demo") -> DialogFacts:
    return DialogFacts(
        dialog_id=uuid.UUID(int=n),
        line_id="demo",
        channel_id=channel_id,
        channel_type=ChannelType.TELEGRAM,
        external_user_id=user,
        customer_name=f"user {user}",
        title=f"dialog {n}",
    )


def play(state: Customer | None, events: list[EventPayload]) -> Customer | None:
    for event in events:
        state = domain.evolve(state, event)
    return state


def customer_with_lead(user: str = "42", *dialogs: int) -> Customer:
    """A customer whose first dialog made an auto lead, and later dialogs joined it."""
    state: Customer | None = None
    for n in dialogs or (1,):
        state = play(state, domain.on_dialog_opened(state, facts(n, user), auto_lead=True))
    assert state is not None
    return state


def converted(state: Customer, **drafts: object) -> tuple[Customer, list[EventPayload]]:
    lead = state.lead_ids[0]
    events = domain.convert_lead(state, lead, "ann", PREFILL, **drafts)  # type: ignore[arg-type]
    after = play(state, events)
    assert after is not None
    return after, events


def test_conversion_records_the_entities_and_one_link_per_entity_in_each_lead_dialog() -> None:
    state = customer_with_lead("42", 1, 2)
    after, events = converted(
        state, contact=ContactDraft(), company=CompanyDraft("Acme"), deal=DealDraft(amount_minor=5)
    )
    contact, company, deal, done = events[:4]
    assert isinstance(contact, ContactCreated) and isinstance(company, CompanyCreated)
    assert isinstance(deal, DealCreated) and isinstance(done, LeadConverted)
    # Pre-filled from the lead and the customer's channels, unless given.
    assert (contact.name, contact.phone, contact.email) == ("Carla", PREFILL.phone, None)
    assert (company.name, deal.title, deal.amount_minor) == ("Acme", PREFILL.title, 5)
    assert (deal.contact_id, deal.company_id) == (contact.contact_id, company.company_id)
    assert (done.contact_id, done.company_id, done.deal_id) == (
        contact.contact_id,
        company.company_id,
        deal.deal_id,
    )
    links = [e for e in events if isinstance(e, DialogLinkedToCrm)]
    assert len(links) == 6  # three entities x two dialogs: one system line each
    assert {(link.dialog_id, link.lead_id) for link in links} == {
        (uuid.UUID(int=1), None),
        (uuid.UUID(int=2), None),
    }
    assert after.contact_id == contact.contact_id and after.deal_ids == (deal.deal_id,)
    # The dialogs keep their lead through links that name something else.
    assert set(after.dialog_leads.values()) == {state.lead_ids[0]}


def test_a_lead_converts_once() -> None:
    after, _ = converted(customer_with_lead(), contact=ContactDraft("Carla C."))
    with pytest.raises(Refused) as refused:
        domain.convert_lead(after, after.lead_ids[0], "bob", PREFILL, deal=DealDraft())
    assert refused.value.code == "already_converted"


def test_conversion_needs_something_and_a_lead_of_this_customer() -> None:
    state = customer_with_lead()
    with pytest.raises(Refused) as nothing:
        domain.convert_lead(state, state.lead_ids[0], "ann", PREFILL)
    assert nothing.value.code == "invalid_body"
    with pytest.raises(Refused) as unknown:
        domain.convert_lead(state, uuid.uuid4(), "ann", PREFILL, contact=ContactDraft())
    assert unknown.value.code == "not_found"


def test_a_deal_from_the_chat_needs_a_converted_lead_or_a_contact() -> None:
    state = customer_with_lead()
    dialog, deal_id = uuid.UUID(int=1), uuid.uuid4()
    with pytest.raises(Refused) as before:
        domain.create_deal(state, dialog, deal_id, DealDraft("Sofa"), "ann")
    assert before.value.code == "not_converted"
    with pytest.raises(Refused) as unlinked:
        domain.create_deal(state, uuid.UUID(int=99), deal_id, DealDraft("Sofa"), "ann")
    assert unlinked.value.code == "not_linked"

    after, _ = converted(state, contact=ContactDraft())
    deal, link = domain.create_deal(after, dialog, deal_id, DealDraft("Sofa", 1999, "EUR"), "ann")
    assert isinstance(deal, DealCreated) and isinstance(link, DialogLinkedToCrm)
    # Pre-filled with the contact (Uspacy): the form knows whom the deal is for.
    assert (deal.deal_id, deal.title, deal.contact_id, deal.source_dialog_id) == (
        deal_id,
        "Sofa",
        after.contact_id,
        dialog,
    )
    assert (link.dialog_id, link.deal_id, link.lead_id) == (dialog, deal_id, None)


def test_a_contact_is_edited_only_as_itself() -> None:
    after, _ = converted(customer_with_lead(), contact=ContactDraft())
    assert after.contact_id is not None
    [edit] = domain.update_contact(
        after, after.contact_id, ContactPatch(name="Carla V.", labels=("VIP",)), "ann"
    )
    assert isinstance(edit, ContactUpdated)
    assert (edit.name, edit.labels, edit.phones) == ("Carla V.", ("VIP",), None)
    with pytest.raises(Refused):
        domain.update_contact(after, uuid.uuid4(), ContactPatch(name="x"), "ann")


def merge(into: Customer, source: Customer) -> tuple[Customer, Customer, list[EventPayload]]:
    out = domain.merge_out(source, into.customer_id, "ann", into_contact=into.contact_id)
    closed = play(source, out)
    assert closed is not None
    events = domain.merge_in(into, closed, "ann")
    survivor = play(into, events)
    assert survivor is not None
    return survivor, closed, events


def test_a_merge_moves_leads_deals_accounts_and_every_dialog_to_the_survivor() -> None:
    into, _ = converted(customer_with_lead("1", 1), contact=ContactDraft())
    source, _ = converted(customer_with_lead("2", 2, 3), deal=DealDraft())
    survivor, closed, events = merge(into, source)

    assert closed.merged_into == into.customer_id
    merged, *links = events
    assert isinstance(merged, CustomersMerged)
    assert (merged.customer_id, merged.merged_customer_id) == (
        into.customer_id,
        source.customer_id,
    )
    assert merged.contact_id == into.contact_id and merged.merged_contact_id is None
    assert {link.dialog_id for link in links} == {uuid.UUID(int=2), uuid.UUID(int=3)}  # type: ignore[attr-defined]
    assert all(
        isinstance(link, DialogLinkedToCrm)
        and link.customer_id == into.customer_id
        and link.contact_id == into.contact_id
        and link.lead_id == source.lead_ids[0]
        for link in links
    )
    assert survivor.current_lead == into.lead_ids[0]  # the survivor's lead stays current
    assert set(survivor.lead_ids) == {*into.lead_ids, *source.lead_ids}
    assert survivor.deal_ids == source.deal_ids
    assert survivor.accounts == into.accounts | source.accounts
    assert set(survivor.dialog_leads) == {uuid.UUID(int=n) for n in (1, 2, 3)}


def test_a_merge_is_idempotent_and_never_into_itself() -> None:
    into, source = customer_with_lead("1", 1), customer_with_lead("2", 2)
    survivor, closed, _ = merge(into, source)
    assert domain.merge_out(closed, into.customer_id, "ann") == []
    assert domain.merge_in(survivor, closed, "ann") == []
    with pytest.raises(domain.Merged):  # merged into someone else already
        domain.merge_out(closed, uuid.uuid4(), "ann")
    with pytest.raises(Refused) as same:
        domain.merge_out(into, into.customer_id, "ann")
    assert same.value.code == "same_customer"


def test_when_both_have_a_contact_the_survivors_stays_and_the_other_is_merged_into_it() -> None:
    into, _ = converted(customer_with_lead("1", 1), contact=ContactDraft())
    source, _ = converted(customer_with_lead("2", 2), contact=ContactDraft())
    survivor, _, events = merge(into, source)
    merged = events[0]
    assert isinstance(merged, CustomersMerged)
    assert (merged.contact_id, merged.merged_contact_id) == (into.contact_id, source.contact_id)
    assert survivor.contact_id == into.contact_id


def test_a_dialog_of_a_merged_customer_goes_to_the_survivor_without_a_new_lead() -> None:
    into, source = customer_with_lead("1", 1), customer_with_lead("2", 2)
    survivor, closed, _ = merge(into, source)
    later = facts(7, user="2")
    with pytest.raises(domain.Merged) as redirected:
        domain.on_dialog_opened(closed, later, auto_lead=True)
    assert redirected.value.into == into.customer_id
    events = domain.on_dialog_opened(survivor, later, auto_lead=True, customer_id=into.customer_id)
    assert [type(e).__name__ for e in events] == ["DialogLinkedToCrm"]  # account known by now
    [link] = events
    assert isinstance(link, DialogLinkedToCrm)
    assert (link.customer_id, link.lead_id) == (into.customer_id, into.lead_ids[0])


def test_an_account_never_seen_is_linked_by_starting_its_stream_merged() -> None:
    into = customer_with_lead("1", 1)
    account = Account(ChannelType.TELEGRAM, "tg-other", "555", "Carla on bot 2")
    events = domain.merge_out(None, into.customer_id, "ann", account)
    assert [type(e).__name__ for e in events] == ["CustomerIdentified", "CustomersMerged"]
    closed = play(None, events)
    assert closed is not None and closed.merged_into == into.customer_id
    assert closed.customer_id == account.customer_id
    with pytest.raises(Refused):
        domain.merge_out(None, into.customer_id, "ann")  # no such customer, no account
