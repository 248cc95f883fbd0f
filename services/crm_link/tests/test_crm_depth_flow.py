"""CRM depth through crm-link's HTTP API on the real broker and Postgres: converting a lead, a
deal from the chat, contact cards and search, linked accounts, merges, CRM rights."""

from __future__ import annotations

import uuid
from typing import Any

from openlines.crm_link.domain import customer_id_for
from openlines.events.catalog import (
    ContactCreated,
    ContactUpdated,
    CustomersMerged,
    DealCreated,
    DialogLinkedToCrm,
    Direction,
    LeadConverted,
    LeadCreated,
)

from .crm_support import Crm, assigned, message, now, opened


def user() -> str:
    return str(uuid.uuid4().int % 10**9)


async def dialog_with_lead(
    crm: Crm, who: str, operator: str = "ann", channel_id: str = "tg-demo", **kw: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """A dialog of a new customer on an auto-lead line, assigned to `operator`: (dialog, lead)."""
    dialog = uuid.uuid4()
    await crm.publish(opened(dialog, who, channel_id=channel_id, **kw))
    await crm.publish(assigned(dialog, operator, channel_id=channel_id))
    await crm.caught_up(dialog, channel_id=channel_id)

    def linked() -> list[DialogLinkedToCrm]:
        return [e for e in crm.crm_events.of(DialogLinkedToCrm) if e.dialog_id == dialog]

    await crm.crm_events.wait_for(lambda _: bool(linked()), "the dialog's link")
    lead = linked()[0].lead_id
    assert lead is not None
    return dialog, lead


async def test_convert_a_lead_once_then_a_deal_from_the_chat(crm: Crm) -> None:
    who = user()
    dialog, lead = await dialog_with_lead(crm, who, phone="+380 50 111 22 33", name="Olena")
    await crm.publish(message(dialog, "I want the sofa", now()))

    status, body = await crm.post(f"/api/v1/dialogs/{dialog}/deal", "ann", body={"title": "x"})
    assert (status, body["error"]["code"]) == (409, "not_converted"), body

    status, body = await crm.post(
        f"/api/v1/crm/leads/{lead}/convert",
        "ann",
        body={"contact": {}, "deal": {"amount": 1250.5, "currency": "EUR"}},
    )
    assert status == 201, body
    assert body["lead"]["status"] == "converted" and body["company_id"] is None
    contact_id, deal_id = body["contact_id"], body["deal_id"]
    status, again = await crm.post(
        f"/api/v1/crm/leads/{lead}/convert", "ann", body={"company": {"name": "Acme"}}
    )
    assert (status, again["error"]["code"]) == (409, "already_converted")

    await crm.crm_events.wait_for(lambda r: len(r.of(LeadConverted)) == 1, "conversion")
    [contact] = crm.crm_events.of(ContactCreated)
    # Pre-filled from the customer's channel: name and phone.
    assert (str(contact.contact_id), contact.name, contact.phone) == (
        contact_id,
        "Olena",
        "+380 50 111 22 33",
    )
    [deal] = crm.crm_events.of(DealCreated)
    assert (deal.amount_minor, deal.currency, str(deal.contact_id)) == (125050, "EUR", contact_id)
    links = [e for e in crm.crm_events.of(DialogLinkedToCrm) if e.dialog_id == dialog]
    assert (str(links[-2].contact_id), str(links[-1].deal_id)) == (contact_id, deal_id)

    status, chat_deal = await crm.post(
        f"/api/v1/dialogs/{dialog}/deal",
        "ann",
        body={"title": "Cushions", "amount": 20, "stage": "proposal"},
    )
    assert status == 201, chat_deal
    assert (chat_deal["contact_id"], chat_deal["source_dialog_id"]) == (contact_id, str(dialog))
    assert (chat_deal["stage"], chat_deal["amount_minor"]) == ("proposal", 2000)

    await crm.caught_up(dialog)
    status, card = await crm.get(f"/api/v1/crm/contacts/{contact_id}", "ann")
    assert status == 200, card
    assert (card["name"], card["phones"]) == ("Olena", ["+380 50 111 22 33"])
    [shown] = card["dialogs"]
    assert (shown["dialog_id"], shown["status"], shown["channel_id"]) == (
        str(dialog),
        "active",
        "tg-demo",
    )
    # Two markers (crm_support's) and the customer's message.
    assert shown["message_count"] == 3 and shown["last_message"]["text"].startswith("marker")
    assert card["channels"][0]["external_user_id"] == who

    status, got = await crm.get(f"/api/v1/crm/deals/{deal_id}", "ann")
    assert status == 200 and got["title"] == "Olena (tg-demo)"

    status, edited = await crm.patch(
        f"/api/v1/crm/contacts/{contact_id}",
        "ann",
        body={"name": "Olena K.", "labels": ["VIP"], "emails": ["olena@example.com"]},
    )
    assert status == 200, edited
    assert (edited["name"], edited["labels"], edited["emails"]) == (
        "Olena K.",
        ["VIP"],
        ["olena@example.com"],
    )
    assert edited["phones"] == ["+380 50 111 22 33"]  # not given: unchanged
    await crm.crm_events.wait_for(lambda r: len(r.of(ContactUpdated)) == 1, "the edit")

    # Search: by name, phone digits, e-mail and messenger account; keyset pages.
    for q in ("olena k", "380501112233", "olena@example", who):
        status, found = await crm.get(f"/api/v1/crm/contacts?q={q}", "ann")
        assert status == 200 and [c["id"] for c in found["items"]] == [contact_id], (q, found)
    status, deals = await crm.get(f"/api/v1/crm/deals?q={who}&limit=1", "ann")
    assert status == 200 and len(deals["items"]) == 1 and deals["next_cursor"], deals
    status, rest = await crm.get(
        f"/api/v1/crm/deals?q={who}&limit=1&cursor={deals['next_cursor']}", "ann"
    )
    assert status == 200 and len(rest["items"]) == 1, rest
    assert {deals["items"][0]["id"], rest["items"][0]["id"]} == {deal_id, chat_deal["id"]}
    status, bad = await crm.get("/api/v1/crm/deals?cursor=nonsense", "ann")
    assert (status, bad["error"]["code"]) == (400, "bad_cursor")


async def test_crm_rights_none_own_all_and_mentions(crm: Crm) -> None:
    hers, lead = await dialog_with_lead(crm, user(), operator="ann")
    status, body = await crm.post(f"/api/v1/crm/leads/{lead}/convert", "ann", body={"contact": {}})
    assert status == 201
    contact_id = body["contact_id"]
    for path in (f"/api/v1/crm/leads/{lead}", f"/api/v1/crm/contacts/{contact_id}"):
        # none: no CRM at all, even on her own line.
        status, body = await crm.get(path, "cara")
        assert (status, body["error"]["code"]) == (404, "not_found")
        # own: a colleague's customer is not hers (dan holds his dialog, ann does not).
        status, _ = await crm.get(path, "bob")
        assert status == 404
        # all: every entity of his lines, its dialogs still only where he may list them.
        status, body = await crm.get(path, "dan")
        assert status == 200 and body["dialogs"] == [], body
        status, body = await crm.get(path, "sue", "supervisor")
        assert status == 200 and [d["dialog_id"] for d in body["dialogs"]] == [str(hers)]
    status, listed = await crm.get("/api/v1/crm/contacts", "cara")
    assert status == 404
    status, listed = await crm.get("/api/v1/crm/contacts?limit=100", "bob")
    assert contact_id not in [c["id"] for c in listed["items"]]
    status, body = await crm.post(f"/api/v1/dialogs/{hers}/lead", "cara", body={})
    assert status == 404

    # @mentioned in a note: bob may read the dialog, so its lead (the known gap).
    await crm.publish(
        message(hers, "@bob look", now(), direction=Direction.NOTE).model_copy(
            update={"mentions": ("bob",)}
        )
    )
    await crm.caught_up(hers)
    status, body = await crm.get(f"/api/v1/crm/leads/{lead}", "bob")
    assert status == 200, body


async def test_one_person_across_messengers_and_merges(crm: Crm) -> None:
    first, second, third = user(), user(), user()
    d1, lead1 = await dialog_with_lead(crm, first)
    status, body = await crm.post(f"/api/v1/crm/leads/{lead1}/convert", "ann", body={"contact": {}})
    contact_id = body["contact_id"]
    a, b, c = (customer_id_for("telegram", w) for w in (first, second, third))
    # The same person writes to the second bot under another account: a customer of its own.
    d2, lead2 = await dialog_with_lead(crm, second, channel_id="tg-other")
    assert lead2 != lead1

    link = {"channel_id": "tg-other", "external_user_id": second}
    status, card = await crm.post(f"/api/v1/crm/contacts/{contact_id}/channels", "ann", body=link)
    assert status == 200, card
    assert {(ch["channel_id"], ch["external_user_id"]) for ch in card["channels"]} == {
        ("tg-demo", first),
        ("tg-other", second),
    }
    assert {d["dialog_id"] for d in card["dialogs"]} == {str(d1), str(d2)}
    status, moved = await crm.get(f"/api/v1/crm/customers/{b}", "ann")
    assert (status, moved) == (301, {"merged_into": str(a)})
    status, body = await crm.post(
        f"/api/v1/crm/contacts/{contact_id}/channels", "ann", body={**link, "channel_id": "nope"}
    )
    assert (status, body["error"]["code"]) == (422, "unknown_channel")

    # A new dialog from the linked account: the same contact, no new lead.
    crm.crm_events.forget()
    d3 = uuid.uuid4()
    await crm.publish(opened(d3, second, channel_id="tg-other"))
    await crm.crm_events.wait_for(
        lambda r: any(e.dialog_id == d3 for e in r.of(DialogLinkedToCrm)), "d3 linked"
    )
    [link3] = [e for e in crm.crm_events.of(DialogLinkedToCrm) if e.dialog_id == d3]
    assert (link3.customer_id, link3.lead_id, str(link3.contact_id)) == (a, lead1, contact_id)
    assert crm.crm_events.of(LeadCreated) == []

    # A duplicate customer merged in: its dialogs show the surviving contact; idempotent.
    d4, lead4 = await dialog_with_lead(crm, third)
    crm.crm_events.forget()
    status, merged = await crm.post(
        "/api/v1/crm/customers/merge", "ann", body={"into": str(a), "from": str(c)}
    )
    assert status == 200, merged
    assert merged["contact_id"] == contact_id and str(lead4) in merged["lead_ids"]
    await crm.crm_events.wait_for(lambda r: len(r.of(CustomersMerged)) == 2, "both sides")
    [relinked] = [e for e in crm.crm_events.of(DialogLinkedToCrm) if e.dialog_id == d4]
    assert (relinked.customer_id, str(relinked.contact_id)) == (a, contact_id)
    await crm.published_all()
    before = len(crm.crm_events.seen)
    status, again = await crm.post(
        "/api/v1/crm/customers/merge", "ann", body={"into": str(a), "from": str(c)}
    )
    assert status == 200 and again["id"] == str(a)
    await crm.published_all()
    assert len(crm.crm_events.seen) == before  # nothing more recorded
    status, lead_card = await crm.get(f"/api/v1/crm/leads/{lead4}", "ann")
    assert status == 200 and lead_card["customer_id"] == str(a)
    status, body = await crm.post(
        "/api/v1/crm/customers/merge", "ann", body={"into": str(a), "from": str(a)}
    )
    assert (status, body["error"]["code"]) == (422, "same_customer")


async def test_a_new_customer_with_a_contacts_phone_is_that_contacts_person(crm: Crm) -> None:
    first, other = user(), user()
    _, lead = await dialog_with_lead(crm, first, phone="+1 (555) 010-7788")
    status, body = await crm.post(f"/api/v1/crm/leads/{lead}/convert", "ann", body={"contact": {}})
    assert status == 201
    crm.crm_events.forget()
    later = uuid.uuid4()
    await crm.publish(opened(later, other, channel_id="tg-other", phone="15550107788"))
    await crm.crm_events.wait_for(
        lambda r: any(e.dialog_id == later for e in r.of(DialogLinkedToCrm)), "linked"
    )
    [link] = [e for e in crm.crm_events.of(DialogLinkedToCrm) if e.dialog_id == later]
    assert (link.customer_id, link.lead_id, str(link.contact_id)) == (
        customer_id_for("telegram", first),
        lead,
        body["contact_id"],
    )
    assert crm.crm_events.of(LeadCreated) == []
