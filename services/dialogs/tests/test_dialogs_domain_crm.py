"""CRM links mirrored into a dialog: one staff-only system line per link, naming what it
added (a contact, a company, a deal, a customer after a merge), not the lead it had."""

from __future__ import annotations

import uuid

from openlines.events.catalog import DialogLinkedToCrm, Direction, MessageAppended

from .test_dialogs_domain import T0, opened, record


def test_each_link_names_what_it_added_and_the_dialog_keeps_the_rest() -> None:
    dialog = opened()
    customer, lead, contact, deal = (uuid.uuid4() for _ in range(4))
    lines = []
    for link in (
        DialogLinkedToCrm(dialog_id=dialog.id, customer_id=customer, lead_id=lead),
        DialogLinkedToCrm(dialog_id=dialog.id, customer_id=customer, contact_id=contact),
        DialogLinkedToCrm(dialog_id=dialog.id, customer_id=customer, deal_id=deal),
    ):
        events = dialog.link_crm(link, system_message_id=uuid.uuid4(), now=T0)
        system = events[-1]
        assert isinstance(system, MessageAppended) and system.direction is Direction.SYSTEM
        lines.append(system.text)
        record(dialog, events)
    assert lines == [
        f"Linked to CRM lead {lead}",
        f"Linked to CRM contact {contact}",
        f"Linked to CRM deal {deal}",
    ]
    assert (dialog.crm.lead_id, dialog.crm.contact_id, dialog.crm.deal_id) == (lead, contact, deal)

    # A merge moves it to the survivor, whose contact it now shows.
    survivor, kept = uuid.uuid4(), uuid.uuid4()
    moved = DialogLinkedToCrm(
        dialog_id=dialog.id, customer_id=survivor, lead_id=lead, contact_id=kept
    )
    events = dialog.link_crm(moved, system_message_id=uuid.uuid4(), now=T0)
    system = events[-1]
    assert isinstance(system, MessageAppended)
    assert system.text == f"Linked to CRM contact {kept}"
    record(dialog, events)
    assert (dialog.crm.customer_id, dialog.crm.lead_id) == (survivor, lead)
