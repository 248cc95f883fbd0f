"""The CRM block from the operator's side, through the gateway: one person writes to two
Telegram bots under two accounts; the operator converts the lead into a contact and a deal,
links the second account, adds a deal from the chat, edits the contact, and merges a
duplicate customer. Every dialog, old and new, shows the surviving contact, and every record
on openlines.crm.v1 validates against its JSON Schema."""

from __future__ import annotations

import itertools
import json
import time
from functools import partial
from typing import Any

import aiohttp

from openlines.crm_link.domain import customer_id_for
from openlines.events.schema import json_schemas
from openlines.events.testing.schema_check import check
from openlines.events.topics import CRM
from openlines.kit.testing.kafka import read_topic

from .conftest import CRM_CHANNEL, CRM_CHANNEL_2, CRM_SECRET, CRM_SECRET_2, Stack
from .steps import customer_says, dialog_of_chat, eventually, get_json, json_if_ok, post_json

_chats = itertools.count(7_700_000 + int(time.time()) % 100_000 * 10)


async def test_convert_link_merge_and_every_dialog_shows_the_surviving_contact(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, cr1, sue = stack.url, stack.auth("cr1"), stack.auth("sue", "supervisor")
    on_tg, on_bot2, duplicate = next(_chats), next(_chats), next(_chats)
    bot1 = {"channel": CRM_CHANNEL, "secret": CRM_SECRET}
    bot2 = {"channel": CRM_CHANNEL_2, "secret": CRM_SECRET_2}

    async def dialog_with_lead(chat: int, name: str, where: dict[str, str]) -> dict[str, Any]:
        await customer_says(http, base, chat, name, "Do you have the blue sofa?", **where)
        return await dialog_of_chat(
            http,
            base,
            cr1,
            chat,
            where=lambda d: d["crm"] is not None and d["crm"]["lead_id"] is not None,
            what=f"{name}'s dialog with its lead",
        )

    first = await dialog_with_lead(on_tg, "Maria Koval", bot1)
    second = await dialog_with_lead(on_bot2, "Maria K", bot2)
    survivor = first["crm"]["customer_id"]
    assert survivor == str(customer_id_for("telegram", str(on_tg)))
    assert second["crm"]["lead_id"] != first["crm"]["lead_id"]  # two customers so far

    # Convert Maria's lead: a contact (pre-filled from the channel) and a deal.
    lead = first["crm"]["lead_id"]
    status, converted = await post_json(
        http,
        f"{base}/api/v1/crm/leads/{lead}/convert",
        cr1,
        {"contact": {"phone": "+380 50 777 00 11"}, "deal": {"amount": 420, "currency": "EUR"}},
    )
    assert status == 201, converted
    contact = converted["contact_id"]
    status, again = await post_json(
        http, f"{base}/api/v1/crm/leads/{lead}/convert", cr1, {"contact": {}}
    )
    assert (status, again["error"]["code"]) == (409, "already_converted")

    # Her second account (the other bot) is the same person: linked to the contact.
    status, card = await post_json(
        http,
        f"{base}/api/v1/crm/contacts/{contact}/channels",
        cr1,
        {"channel_id": CRM_CHANNEL_2, "external_user_id": str(on_bot2)},
    )
    assert status == 200, card
    assert card["name"] == "Maria Koval" and card["phones"] == ["+380 50 777 00 11"]
    assert {(c["channel_id"], c["external_user_id"]) for c in card["channels"]} == {
        (CRM_CHANNEL, str(on_tg)),
        (CRM_CHANNEL_2, str(on_bot2)),
    }

    # A deal from the chat of the second account, pre-filled with the contact.
    status, deal = await post_json(
        http, f"{base}/api/v1/dialogs/{second['id']}/deal", cr1, {"title": "Cushions"}
    )
    assert status == 201, deal
    assert deal["contact_id"] == contact

    # A duplicate customer (a third account) is merged into Maria.
    third = await dialog_with_lead(duplicate, "M. Koval", bot1)
    status, merged = await post_json(
        http,
        f"{base}/api/v1/crm/customers/merge",
        cr1,
        {"into": survivor, "from": third["crm"]["customer_id"]},
    )
    assert status == 200, merged
    assert merged["contact_id"] == contact and third["crm"]["lead_id"] in merged["lead_ids"]
    status, moved = await get_json(
        http, f"{base}/api/v1/crm/customers/{third['crm']['customer_id']}?", cr1
    )
    # aiohttp follows the 301 to the survivor's card.
    assert (status, moved["id"]) == (200, survivor)

    # The contact is renamed and labelled: every dialog's JSON and the list show it.
    status, edited = await post_json(
        http,
        f"{base}/api/v1/crm/contacts/{contact}",
        cr1,
        {"name": "Maria Koval-Shevchenko", "labels": ["VIP"]},
        method="PATCH",
    )
    assert status == 200, edited

    # She writes again from the second account after that chat closed: a new dialog, the same
    # contact, no new lead.
    status, _ = await post_json(http, f"{base}/api/v1/dialogs/{second['id']}/close", cr1)
    assert status == 200
    await customer_says(http, base, on_bot2, "Maria K", "Me again", **bot2)
    fourth = await dialog_of_chat(
        http,
        base,
        cr1,
        on_bot2,
        where=lambda d: d["id"] != second["id"] and (d["crm"] or {}).get("lead_id"),
        what="her new dialog, linked",
    )
    assert (fourth["crm"]["lead_id"], fourth["crm"]["contact_id"]) == (lead, contact)

    async def shows_the_survivor(dialog_id: str) -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}", cr1)
        crm = (body or {}).get("crm") or {}
        if crm.get("customer_id") == survivor and crm.get("contact_id") == contact:
            return dict(body)
        return None

    for dialog in (first, second, third, fourth):
        shown = await eventually(partial(shows_the_survivor, dialog["id"]), "the survivor shown")
        assert shown["customer"]["name"] == "Maria Koval-Shevchenko"
        assert shown["customer"]["labels"] == ["VIP"]
        assert deal["id"] in shown["crm"]["deal_ids"]
    timeline = await json_if_ok(http, f"{base}/api/v1/dialogs/{first['id']}/timeline", cr1)
    system = [m["text"] for m in timeline["items"] if m["direction"] == "system"]
    assert f"Linked to CRM contact {contact}" in system
    assert f"Linked to CRM deal {converted['deal_id']}" in system

    # The contact lists every dialog, newest first, with its channel and message count.
    status, card = await get_json(http, f"{base}/api/v1/crm/contacts/{contact}", sue)
    assert status == 200
    assert {d["dialog_id"] for d in card["dialogs"]} == {
        d["id"] for d in (first, second, third, fourth)
    }
    stamps = [d["last_activity_at"] for d in card["dialogs"]]
    assert stamps == sorted(stamps, reverse=True)
    status, found = await get_json(http, f"{base}/api/v1/crm/contacts?q=shevchenko", cr1)
    assert status == 200 and [c["id"] for c in found["items"]] == [contact]

    # Every record crm-link published validates against its type's JSON Schema.
    schemas = json_schemas()
    bootstrap = str(stack.state["kafka"]["bootstrap"])  # type: ignore[index]
    records = await read_topic(
        bootstrap,
        CRM,
        lambda rs: any(dict(r.headers).get("type") == b"CustomersMerged" for r in rs),
        timeout=30,
        to_end=True,
    )
    types = set()
    for record in records:
        body = json.loads(record.value)
        schema = schemas[f"{CRM}/{body['type']}"]
        assert check(body, schema, schema) == [], body["type"]
        types.add(body["type"])
    assert {
        "CustomerIdentified",
        "LeadCreated",
        "LeadConverted",
        "ContactCreated",
        "DealCreated",
        "ContactUpdated",
        "CustomersMerged",
        "DialogLinkedToCrm",
    } <= types
