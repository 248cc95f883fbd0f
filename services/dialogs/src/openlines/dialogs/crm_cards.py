"""What the dialog list and the dialog JSON show of the customer's CRM card (crm-link's):
the contact's current name and labels, and the customer's deals.

Kept from openlines.crm.v1 in `tables.crm_cards`, one row per CRM customer, and read beside
each dialog row through its `crm_customer_id` (the link dialogs mirrors), so a dialog linked
later, or moved by a merge, shows the card at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.tables import crm_cards, dialogs
from openlines.events.catalog import ContactCreated, ContactUpdated, CustomersMerged, DealCreated
from openlines.events.envelope import Envelope
from openlines.kit.subscription import Subscription


def subscribe(sub: Subscription) -> None:
    sub.on(ContactCreated, ContactUpdated, DealCreated, CustomersMerged)(project)


async def project(conn: AsyncConnection, env: Envelope) -> None:
    event = env.payload
    if isinstance(event, ContactCreated):
        await _card(conn, event.customer_id, contact_id=event.contact_id, contact_name=event.name)
    elif isinstance(event, ContactUpdated):
        values: dict[str, Any] = {}
        if event.name is not None:
            values["contact_name"] = event.name
        if event.labels is not None:
            values["labels"] = list(event.labels)
        if values:
            await _card(conn, event.customer_id, **values)
    elif isinstance(event, DealCreated):
        await _card(conn, event.customer_id)
        await conn.execute(
            update(crm_cards)
            .where(
                crm_cards.c.customer_id == event.customer_id,
                ~crm_cards.c.deal_ids.contains([event.deal_id]),  # a redelivery adds nothing
            )
            .values(deal_ids=func.array_append(crm_cards.c.deal_ids, event.deal_id))
        )
    elif isinstance(event, CustomersMerged) and env.stream_id == str(event.customer_id):
        await _merged(conn, event)


async def _card(conn: AsyncConnection, customer_id: Any, **values: Any) -> None:
    row = {"customer_id": customer_id, "labels": [], "deal_ids": [], **values}
    statement = insert(crm_cards).values(row)
    if values:
        await conn.execute(
            statement.on_conflict_do_update(index_elements=[crm_cards.c.customer_id], set_=values)
        )
    else:
        await conn.execute(statement.on_conflict_do_nothing())


async def _merged(conn: AsyncConnection, event: CustomersMerged) -> None:
    """The survivor's card takes the merged one's deals, and its contact when it had none."""
    merged = (
        await conn.execute(
            select(crm_cards).where(crm_cards.c.customer_id == event.merged_customer_id)
        )
    ).first()
    await _card(conn, event.customer_id)
    if merged is None:
        return
    survivor = crm_cards.c
    await conn.execute(
        update(crm_cards)
        .where(
            survivor.customer_id == event.customer_id,
            ~survivor.deal_ids.contains(list(merged.deal_ids)),  # a redelivery adds nothing
        )
        .values(deal_ids=func.array_cat(survivor.deal_ids, list(merged.deal_ids)))
    )
    if merged.contact_id is not None and event.contact_id == merged.contact_id:
        await conn.execute(
            update(crm_cards)
            .where(survivor.customer_id == event.customer_id, survivor.contact_id.is_(None))
            .values(
                contact_id=merged.contact_id,
                contact_name=merged.contact_name,
                labels=merged.labels,
            )
        )


def columns() -> list[ColumnElement[Any]]:
    """The card's fields beside a dialog row (null when the customer has no card)."""

    def of(column: ColumnElement[Any], label: str) -> ColumnElement[Any]:
        return (
            select(column)
            .where(crm_cards.c.customer_id == dialogs.c.crm_customer_id)
            .scalar_subquery()
            .label(label)
        )

    return [
        of(crm_cards.c.contact_id, "crm_card_contact_id"),
        of(crm_cards.c.contact_name, "crm_contact_name"),
        of(crm_cards.c.labels, "crm_labels"),
        of(crm_cards.c.deal_ids, "crm_deal_ids"),
    ]
