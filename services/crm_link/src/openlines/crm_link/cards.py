"""The CRM cards the API answers with: leads, contacts, companies, deals, customers, their
dialogs and channels, and the lists with search. Reads only, in the caller's transaction."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.crm_link.projection import phone_key
from openlines.crm_link.tables import (
    companies,
    contacts,
    customer_channels,
    customers,
    deals,
    dialogs,
    leads,
)
from openlines.kit.access import CrmFacts
from openlines.kit.access import DialogFacts as AccessFacts


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _at(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Card:
    """An entity's JSON, and what the access policy needs to decide who sees it."""

    body: dict[str, Any]
    facts: CrmFacts


@dataclass(frozen=True)
class Moved:
    """A merged customer or contact: reads answer where it went."""

    merged_into: UUID


# -- dialogs and channels of an entity -----------------------------------------------------------


def dialog_entry(d: Any) -> dict[str, Any]:
    return {
        "dialog_id": str(d.dialog_id),
        "line_id": d.line_id,
        "channel_id": d.channel_id,
        "channel_type": d.channel_type,
        "title": d.title,
        "opened_at": d.opened_at.isoformat(),
        "last_activity_at": d.last_activity_at.isoformat(),
        "last_message": d.last_message,
        "message_count": d.message_count,
        "status": d.status,
        "assignee_id": d.assignee_id,
        "participants": list(d.participants),
    }


def access_facts(d: Any) -> AccessFacts:
    return AccessFacts(
        d.line_id, d.status, d.assignee_id, tuple(d.participants), tuple(d.mentioned)
    )


async def dialogs_where(
    conn: AsyncConnection, where: ColumnElement[bool]
) -> list[tuple[dict[str, Any], AccessFacts]]:
    """Dialogs newest activity first, with their access facts."""
    rows = await conn.execute(
        select(dialogs)
        .where(where)
        .order_by(dialogs.c.last_activity_at.desc(), dialogs.c.dialog_id)
    )
    return [(dialog_entry(d), access_facts(d)) for d in rows]


async def channels_of(conn: AsyncConnection, customer_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(customer_channels)
        .where(customer_channels.c.customer_id == customer_id)
        .order_by(customer_channels.c.channel_id, customer_channels.c.external_user_id)
    )
    return [
        {
            "channel_type": c.channel_type,
            "channel_id": c.channel_id,
            "external_user_id": c.external_user_id,
            "name": c.name,
        }
        for c in rows
    ]


async def _card(
    conn: AsyncConnection,
    body: dict[str, Any],
    responsible: Iterable[str],
    where: ColumnElement[bool],
    customer_id: UUID,
) -> Card:
    linked = await dialogs_where(conn, where)
    body = {**body, "dialogs": linked, "channels": await channels_of(conn, customer_id)}
    return Card(body, CrmFacts(tuple(responsible), tuple(a for _, a in linked)))


# -- one entity ----------------------------------------------------------------------------------


async def lead(conn: AsyncConnection, lead_id: UUID) -> Card | None:
    row = (await conn.execute(select(leads).where(leads.c.lead_id == lead_id))).first()
    if row is None:
        return None
    body = {
        "id": str(row.lead_id),
        "customer_id": str(row.customer_id),
        "title": row.title,
        "status": row.status,
        "auto": row.auto,
        "source_dialog_id": _str(row.source_dialog_id),
        "created_at": row.created_at.isoformat(),
        "converted_at": _at(row.converted_at),
    }
    owners = [a for a in (row.actor_id, row.converted_by) if a]
    return await _card(conn, body, owners, dialogs.c.lead_id == lead_id, row.customer_id)


def contact_body(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.contact_id),
        "customer_id": str(row.customer_id),
        "name": row.name,
        "phones": list(row.phones),
        "emails": list(row.emails),
        "note": row.note,
        "labels": list(row.labels),
        "source_lead_id": _str(row.source_lead_id),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def company_body(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.company_id),
        "customer_id": str(row.customer_id),
        "name": row.name,
        "source_lead_id": _str(row.source_lead_id),
        "created_at": row.created_at.isoformat(),
    }


def deal_body(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.deal_id),
        "customer_id": str(row.customer_id),
        "title": row.title,
        "amount": None if row.amount_minor is None else row.amount_minor / 100,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "stage": row.stage,
        "contact_id": _str(row.contact_id),
        "company_id": _str(row.company_id),
        "source_lead_id": _str(row.source_lead_id),
        "source_dialog_id": _str(row.source_dialog_id),
        "created_at": row.created_at.isoformat(),
    }


@dataclass(frozen=True)
class Kind:
    """One kind of CRM entity in the read model."""

    name: str
    table: Table
    key: str
    body: Any
    searched: tuple[str, ...]

    @property
    def id_column(self) -> ColumnElement[Any]:
        return self.table.c[self.key]


CONTACT = Kind("contact", contacts, "contact_id", contact_body, ("name",))
COMPANY = Kind("company", companies, "company_id", company_body, ("name",))
DEAL = Kind("deal", deals, "deal_id", deal_body, ("title",))


async def entity(conn: AsyncConnection, kind: Kind, entity_id: UUID) -> Card | Moved | None:
    row = (await conn.execute(select(kind.table).where(kind.id_column == entity_id))).first()
    if row is None:
        return None
    if "merged_into" in row._mapping and row.merged_into is not None:
        return Moved(row.merged_into)
    where = dialogs.c.customer_id == row.customer_id
    return await _card(conn, kind.body(row), row.responsible, where, row.customer_id)


async def customer(conn: AsyncConnection, customer_id: UUID) -> Card | Moved | None:
    """A customer (one person, all their accounts), with their contact, company, leads, deals."""
    row = (
        await conn.execute(select(customers).where(customers.c.customer_id == customer_id))
    ).first()
    if row is None:
        return None
    if row.merged_into is not None:
        return Moved(row.merged_into)

    async def ids(table: Table, key: str) -> list[str]:
        found = await conn.execute(
            select(table.c[key]).where(table.c.customer_id == customer_id).order_by(table.c[key])
        )
        return [str(v) for v in found.scalars()]

    contact = (
        await conn.execute(
            select(
                contacts.c.contact_id, contacts.c.name, contacts.c.labels, contacts.c.responsible
            ).where(contacts.c.customer_id == customer_id, contacts.c.merged_into.is_(None))
        )
    ).first()
    body = {
        "id": str(row.customer_id),
        "name": contact.name if contact is not None else row.name,
        "labels": list(contact.labels) if contact is not None else [],
        "contact_id": _str(contact.contact_id) if contact is not None else None,
        "company_ids": await ids(companies, "company_id"),
        "lead_ids": await ids(leads, "lead_id"),
        "deal_ids": await ids(deals, "deal_id"),
        "created_at": row.created_at.isoformat(),
    }
    owners = list(contact.responsible) if contact is not None else []
    return await _card(conn, body, owners, dialogs.c.customer_id == customer_id, customer_id)


async def customer_of_contact(conn: AsyncConnection, contact_id: UUID) -> UUID | Moved | None:
    row = (
        await conn.execute(
            select(contacts.c.customer_id, contacts.c.merged_into).where(
                contacts.c.contact_id == contact_id
            )
        )
    ).first()
    if row is None:
        return None
    return Moved(row.merged_into) if row.merged_into is not None else row.customer_id


async def customer_of_phone(conn: AsyncConnection, phone: str) -> UUID | None:
    """The customer whose contact has this phone (the oldest contact when several do)."""
    key = phone_key(phone)
    if key is None:
        return None
    found = await conn.execute(
        select(contacts.c.customer_id)
        .where(contacts.c.phone_keys.contains([key]), contacts.c.merged_into.is_(None))
        .order_by(contacts.c.created_at, contacts.c.contact_id)
        .limit(1)
    )
    return found.scalar_one_or_none()


async def lead_prefill(
    conn: AsyncConnection, lead_id: UUID
) -> tuple[str, str, str | None, str | None]:
    """(name, title, phone, e-mail) a conversion starts from: the lead's title, and the
    customer's name, phone and e-mail as its channels gave them (newest dialog first)."""
    row = (await conn.execute(select(leads).where(leads.c.lead_id == lead_id))).one()
    found = await conn.execute(
        select(dialogs.c.customer_name, dialogs.c.customer_phone, dialogs.c.customer_email)
        .where(dialogs.c.customer_id == row.customer_id)
        .order_by(dialogs.c.opened_at.desc())
    )
    rows = found.all()
    name = next((r.customer_name for r in rows if r.customer_name), row.title)
    phone = next((r.customer_phone for r in rows if r.customer_phone), None)
    email = next((r.customer_email for r in rows if r.customer_email), None)
    return name, row.title, phone, email


# -- lists ---------------------------------------------------------------------------------------


def encode_cursor(created_at: datetime, entity_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{entity_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, entity_id = raw.partition("|")
        return datetime.fromisoformat(at), UUID(entity_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _search(kind: Kind, q: str) -> ColumnElement[bool]:
    """`q` over the name (or title), phones, e-mails and the customer's messenger accounts."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    table = kind.table
    reach: list[ColumnElement[bool]] = [table.c[c].ilike(pattern) for c in kind.searched]
    if kind is CONTACT:
        reach.append(func.array_to_string(contacts.c.emails, " ").ilike(pattern))
        reach.append(func.array_to_string(contacts.c.phones, " ").ilike(pattern))
        key = phone_key(q)
        if key is not None:
            reach.append(contacts.c.phone_keys.contains([key]))
    reach.append(
        exists().where(
            customer_channels.c.customer_id == table.c.customer_id,
            or_(
                customer_channels.c.external_user_id.ilike(pattern),
                customer_channels.c.name.ilike(pattern),
            ),
        )
    )
    return or_(*reach)


async def page(
    conn: AsyncConnection,
    kind: Kind,
    *,
    q: str | None,
    after: tuple[datetime, UUID] | None,
    size: int,
) -> Sequence[Any]:
    """`size` rows of `kind` newest first, after the cursor, matching `q`."""
    table = kind.table
    conditions: list[ColumnElement[bool]] = []
    if "merged_into" in table.c:
        conditions.append(table.c.merged_into.is_(None))
    if q:
        conditions.append(_search(kind, q))
    if after is not None:
        conditions.append(tuple_(table.c.created_at, kind.id_column) < tuple_(*after))
    query = (
        select(table)
        .where(and_(*conditions) if conditions else and_(True))
        .order_by(table.c.created_at.desc(), kind.id_column.desc())
        .limit(size)
    )
    return (await conn.execute(query)).all()


async def facts_of_customers(
    conn: AsyncConnection, customer_ids: Iterable[UUID]
) -> dict[UUID, list[AccessFacts]]:
    wanted = sorted(set(customer_ids))
    by_customer: dict[UUID, list[AccessFacts]] = {c: [] for c in wanted}
    if wanted:
        rows = await conn.execute(select(dialogs).where(dialogs.c.customer_id.in_(wanted)))
        for d in rows:
            by_customer[d.customer_id].append(access_facts(d))
    return by_customer
