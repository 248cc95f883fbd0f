"""The customer's CRM card in the dialog JSON and the list: the contact's current name and
labels and the customer's deals (from openlines.crm.v1), and the `crm` block by CRM rights."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from openlines.events.catalog import (
    ContactCreated,
    ContactUpdated,
    CustomersMerged,
    DealCreated,
    DialogLinkedToCrm,
)
from openlines.events.topics import CRM

from .dialogs_stack import DialogsStack

pytestmark = pytest.mark.parametrize("lines_file", [Path(__file__).with_name("lines_crm.yaml")])


async def test_the_dialog_shows_the_contacts_current_name_labels_and_deals(
    stack: DialogsStack,
) -> None:
    dialog_id = await stack.open_dialog("4001")
    customer, contact, deal = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def crm(*events: object) -> None:
        for event in events:
            env = await stack.publish(CRM, event, stream_id=str(customer), event_id=None)  # type: ignore[arg-type]
        await stack.wait_handled(env)

    await crm(
        DialogLinkedToCrm(dialog_id=dialog_id, customer_id=customer, lead_id=uuid.uuid4()),
        ContactCreated(contact_id=contact, customer_id=customer, name="Olena"),
        ContactUpdated(contact_id=contact, customer_id=customer, labels=("VIP",)),
        ContactUpdated(contact_id=contact, customer_id=customer, name="Olena K."),
        DealCreated(deal_id=deal, customer_id=customer, title="Sofa"),
        DealCreated(deal_id=deal, customer_id=customer, title="Sofa"),  # redelivered
    )
    body = (await stack.dialog(dialog_id, "ann")).body
    assert (body["customer"]["name"], body["customer"]["labels"]) == ("Olena K.", ["VIP"])
    assert body["crm"]["contact_id"] == str(contact)
    assert body["crm"]["deal_ids"] == [str(deal)]
    listed = (await stack.get("/api/v1/dialogs", "ann")).body["items"]
    [item] = [d for d in listed if d["id"] == str(dialog_id)]
    assert (item["customer"]["name"], item["customer"]["labels"]) == ("Olena K.", ["VIP"])

    # CRM rights `none`: the dialog, but no CRM block.
    hidden = (await stack.dialog(dialog_id, "carl")).body
    assert hidden["crm"] is None and hidden["id"] == str(dialog_id)

    # A merge: the survivor's card takes the merged customer's deals.
    survivor, other_deal = uuid.uuid4(), uuid.uuid4()
    await crm(DealCreated(deal_id=other_deal, customer_id=survivor, title="Lamp"))
    merged = CustomersMerged(
        customer_id=survivor, merged_customer_id=customer, deal_ids=(deal,), contact_id=contact
    )
    env = await stack.publish(CRM, merged, stream_id=str(survivor), event_id=None)
    relink = DialogLinkedToCrm(dialog_id=dialog_id, customer_id=survivor, contact_id=contact)
    await stack.wait_handled(env)
    await stack.wait_handled(
        await stack.publish(CRM, relink, stream_id=str(survivor), event_id=None)
    )
    body = (await stack.dialog(dialog_id, "ann")).body
    assert body["crm"]["customer_id"] == str(survivor)
    assert set(body["crm"]["deal_ids"]) == {str(deal), str(other_deal)}
    assert (body["customer"]["name"], body["customer"]["labels"]) == ("Olena K.", ["VIP"])
