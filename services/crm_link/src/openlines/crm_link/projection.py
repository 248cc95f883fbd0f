"""The CRM read model: written from the customer events crm-link appends and from the dialog
facts it consumes; read by the API. Every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.crm_link.domain import DialogFacts
from openlines.crm_link.tables import (
    companies,
    contacts,
    customer_channels,
    customers,
    deals,
    dialogs,
    leads,
)
from openlines.events.catalog import (
    ChannelType,
    CompanyCreated,
    ContactCreated,
    ContactUpdated,
    CustomerIdentified,
    CustomersMerged,
    DealCreated,
    DialogLinkedToCrm,
    DialogStatus,
    Direction,
    LeadConverted,
    LeadCreated,
    MessageAppended,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.kit.access import DialogFacts as AccessFacts

# Messages the customer sees count as activity; notes and system messages do not.
ACTIVITY = (Direction.IN, Direction.OUT)

# Every statement below runs per consumed event, so it is built once here and executed with a
# parameter dict: building it per call (plus SQLAlchemy's cache key over it) cost ~5x the CPU of
# executing a prebuilt one. Callers always pass the same keys, so the compiled form stays cached.
# UPDATE binds are named apart from the columns: SQLAlchemy reserves column names for SET.

# A dialog's facts are the dialogs columns of the same names.
_FACT_COLUMNS = tuple(field.name for field in fields(DialogFacts))
_RECORD_DIALOG = insert(dialogs).on_conflict_do_nothing(index_elements=[dialogs.c.dialog_id])

_RECORD_LEAD = insert(leads).on_conflict_do_nothing(index_elements=[leads.c.lead_id])

_LINK_DIALOG = (
    update(dialogs)
    .where(dialogs.c.dialog_id == bindparam("link_dialog_id"))
    .values(
        customer_id=bindparam("link_customer_id"),
        # A link names what changed (a contact, a deal...): the dialog keeps its lead.
        lead_id=func.coalesce(
            bindparam("link_lead_id", type_=dialogs.c.lead_id.type), dialogs.c.lead_id
        ),
    )
)

_RECORD_CUSTOMER = insert(customers).on_conflict_do_nothing(
    index_elements=[customers.c.customer_id]
)

_insert_channel = insert(customer_channels)
_UPSERT_CHANNEL = _insert_channel.on_conflict_do_update(
    index_elements=[
        customer_channels.c.customer_id,
        customer_channels.c.channel_id,
        customer_channels.c.external_user_id,
    ],
    set_={"name": _insert_channel.excluded.name},
)

_FACTS = select(
    dialogs.c.line_id, dialogs.c.status, dialogs.c.assignee_id, dialogs.c.participants
).where(dialogs.c.dialog_id == bindparam("facts_dialog_id"))
_SAVE_FACTS = (
    update(dialogs)
    .where(dialogs.c.dialog_id == bindparam("facts_dialog_id"))
    .values(
        line_id=bindparam("facts_line_id"),
        status=bindparam("facts_status"),
        assignee_id=bindparam("facts_assignee_id"),
        participants=bindparam("facts_participants", type_=dialogs.c.participants.type),
    )
)

_sent_at = bindparam("sent_at", type_=dialogs.c.last_message_at.type)
_TOUCH_DIALOG = (
    update(dialogs)
    .where(
        dialogs.c.dialog_id == bindparam("touch_dialog_id"),
        dialogs.c.last_message_at.is_(None) | (dialogs.c.last_message_at <= _sent_at),
    )
    .values(
        last_message_at=_sent_at,
        last_activity_at=func.greatest(dialogs.c.last_activity_at, _sent_at),
        last_message=bindparam("touch_last_message", type_=dialogs.c.last_message.type),
    )
)
_COUNT_MESSAGE = (
    update(dialogs)
    .where(dialogs.c.dialog_id == bindparam("count_dialog_id"))
    .values(message_count=dialogs.c.message_count + 1)
)
_MENTIONED = (
    update(dialogs)
    .where(dialogs.c.dialog_id == bindparam("mention_dialog_id"))
    .values(
        mentioned=func.array(
            select(
                func.unnest(
                    func.array_cat(
                        dialogs.c.mentioned,
                        bindparam("mention_ids", type_=dialogs.c.mentioned.type),
                    )
                )
            )
            .distinct()
            .scalar_subquery()
        )
    )
)


def phone_key(phone: str) -> str | None:
    """A phone as compared across messengers: its digits (too few digits: no key)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits if len(digits) >= 6 else None


def phone_keys(phones: Sequence[str]) -> list[str]:
    return sorted({key for key in map(phone_key, phones) if key is not None})


async def record_dialog(conn: AsyncConnection, dialog: DialogFacts, opened_at: datetime) -> None:
    await conn.execute(
        _RECORD_DIALOG,
        {
            **asdict(dialog),
            "channel_type": dialog.channel_type.value,
            "customer_id": dialog.customer_id,
            "opened_at": opened_at,
            "last_activity_at": opened_at,
            "status": DialogStatus.UNASSIGNED,
            "participants": [],
        },
    )


async def follow_dialog(conn: AsyncConnection, event: EventPayload) -> None:
    """Keep what the access policy needs of a dialog (status, assignee, participants, line)
    as its events come; the consumer is the only writer of these columns."""
    dialog_id = event.dialog_id  # type: ignore[attr-defined]
    row = (await conn.execute(_FACTS, {"facts_dialog_id": dialog_id})).first()
    if row is None:
        return  # not seen opening: nothing to move
    before = _access(row)
    after = before.after(event)
    if after != before:
        await conn.execute(
            _SAVE_FACTS,
            {
                "facts_dialog_id": dialog_id,
                "facts_line_id": after.line_id,
                "facts_status": after.status,
                "facts_assignee_id": after.assignee_id,
                "facts_participants": list(after.participants),
            },
        )


def _access(row: Any) -> AccessFacts:
    mentioned = tuple(row.mentioned) if "mentioned" in row._mapping else ()
    return AccessFacts(row.line_id, row.status, row.assignee_id, tuple(row.participants), mentioned)


async def apply(conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
    """Project customer events just appended."""
    for env in envelopes:
        event = env.payload
        at = env.occurred_at
        if isinstance(event, CustomerIdentified):
            await _customer_identified(conn, event, at)
        elif isinstance(event, LeadCreated):
            await _lead_created(conn, event, at)
        elif isinstance(event, LeadConverted):
            await conn.execute(
                update(leads)
                .where(leads.c.lead_id == event.lead_id)
                .values(status="converted", converted_at=at, converted_by=event.actor_id)
            )
        elif isinstance(event, ContactCreated):
            await _contact_created(conn, event, at)
        elif isinstance(event, ContactUpdated):
            await _contact_updated(conn, event, at)
        elif isinstance(event, CompanyCreated):
            await conn.execute(
                insert(companies)
                .values(
                    company_id=event.company_id,
                    customer_id=event.customer_id,
                    name=event.name,
                    responsible=_actors(event.actor_id),
                    source_lead_id=event.source_lead_id,
                    created_at=at,
                )
                .on_conflict_do_nothing()
            )
        elif isinstance(event, DealCreated):
            await _deal_created(conn, event, at)
        elif isinstance(event, CustomersMerged):
            await _merged(conn, event, survivor_copy=env.stream_id == str(event.customer_id))
        elif isinstance(event, DialogLinkedToCrm):
            await conn.execute(
                _LINK_DIALOG,
                {
                    "link_dialog_id": event.dialog_id,
                    "link_customer_id": event.customer_id,
                    "link_lead_id": event.lead_id,
                },
            )


async def _customer_identified(
    conn: AsyncConnection, event: CustomerIdentified, at: datetime
) -> None:
    identity = {
        "customer_id": event.customer_id,
        "channel_type": event.channel_type.value,
        "external_user_id": event.external_user_id,
        "name": event.name,
    }
    await conn.execute(_RECORD_CUSTOMER, {**identity, "created_at": at})
    await conn.execute(_UPSERT_CHANNEL, {**identity, "channel_id": event.channel_id})


def _actors(actor_id: str | None) -> list[str]:
    return [actor_id] if actor_id else []


async def _contact_created(conn: AsyncConnection, event: ContactCreated, at: datetime) -> None:
    phones = [event.phone] if event.phone else []
    await conn.execute(
        insert(contacts)
        .values(
            contact_id=event.contact_id,
            customer_id=event.customer_id,
            name=event.name,
            phones=phones,
            emails=[event.email] if event.email else [],
            phone_keys=phone_keys(phones),
            note="",
            labels=[],
            responsible=_actors(event.actor_id),
            source_lead_id=event.source_lead_id,
            created_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing()
    )


async def _contact_updated(conn: AsyncConnection, event: ContactUpdated, at: datetime) -> None:
    values: dict[str, Any] = {"updated_at": at}
    if event.name is not None:
        values["name"] = event.name
    if event.phones is not None:
        values["phones"] = list(event.phones)
        values["phone_keys"] = phone_keys(event.phones)
    if event.emails is not None:
        values["emails"] = list(event.emails)
    if event.note is not None:
        values["note"] = event.note
    if event.labels is not None:
        values["labels"] = list(event.labels)
    await conn.execute(
        update(contacts).where(contacts.c.contact_id == event.contact_id).values(**values)
    )


async def _deal_created(conn: AsyncConnection, event: DealCreated, at: datetime) -> None:
    await conn.execute(
        insert(deals)
        .values(
            deal_id=event.deal_id,
            customer_id=event.customer_id,
            title=event.title,
            amount_minor=event.amount_minor,
            currency=event.currency,
            stage=event.stage or "new",
            contact_id=event.contact_id,
            company_id=event.company_id,
            source_lead_id=event.source_lead_id,
            source_dialog_id=event.source_dialog_id,
            responsible=_actors(event.actor_id),
            created_at=at,
        )
        .on_conflict_do_nothing()
    )


async def _merged(conn: AsyncConnection, event: CustomersMerged, *, survivor_copy: bool) -> None:
    """Everything of the merged customer moves to the survivor; the merged customer (and its
    contact, when the survivor had one) answer `merged_into` from now on. Its dialogs move
    with the DialogLinkedToCrm that follow in the survivor's stream."""
    into, merged = event.customer_id, event.merged_customer_id
    if not survivor_copy:
        await conn.execute(
            update(customers).where(customers.c.customer_id == merged).values(merged_into=into)
        )
        return
    for table in (leads, deals, companies):
        await conn.execute(
            update(table).where(table.c.customer_id == merged).values(customer_id=into)
        )
    if event.merged_contact_id is not None:
        await conn.execute(
            update(contacts)
            .where(contacts.c.contact_id == event.merged_contact_id)
            .values(merged_into=event.contact_id)
        )
    else:
        await conn.execute(
            update(contacts).where(contacts.c.customer_id == merged).values(customer_id=into)
        )
    # Its accounts: added to the survivor's (an account both list stays once).
    moved = select(
        literal(into).label("customer_id"),
        customer_channels.c.channel_id,
        customer_channels.c.channel_type,
        customer_channels.c.external_user_id,
        customer_channels.c.name,
    ).where(customer_channels.c.customer_id == merged)
    await conn.execute(
        insert(customer_channels)
        .from_select(
            ["customer_id", "channel_id", "channel_type", "external_user_id", "name"], moved
        )
        .on_conflict_do_nothing()
    )


async def _lead_created(conn: AsyncConnection, event: LeadCreated, at: datetime) -> None:
    await conn.execute(
        _RECORD_LEAD,
        {
            "lead_id": event.lead_id,
            "customer_id": event.customer_id,
            "title": event.title,
            "status": "new",
            "auto": event.auto,
            "source_dialog_id": event.source_dialog_id,
            "actor_id": event.actor_id,
            "created_at": at,
        },
    )


async def touch_dialog(conn: AsyncConnection, message: MessageAppended) -> None:
    """The dialog's latest customer-visible message; an older one arriving late changes nothing."""
    if message.direction not in ACTIVITY:
        return
    await conn.execute(_COUNT_MESSAGE, {"count_dialog_id": message.dialog_id})
    await conn.execute(
        _TOUCH_DIALOG,
        {
            "touch_dialog_id": message.dialog_id,
            "sent_at": message.sent_at,
            "touch_last_message": {
                "message_id": str(message.message_id),
                "text": message.text,
                "direction": message.direction.value,
                "at": message.sent_at.isoformat(),
            },
        },
    )


async def note_mentions(conn: AsyncConnection, message: MessageAppended) -> None:
    """Operators @mentioned in a note may read the dialog (the access policy's *read*), and
    so its CRM entities (`own`)."""
    if message.direction is Direction.NOTE and message.mentions:
        await conn.execute(
            _MENTIONED,
            {"mention_dialog_id": message.dialog_id, "mention_ids": list(message.mentions)},
        )


# -- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogRow:
    facts: DialogFacts
    lead_id: UUID | None
    access: AccessFacts
    customer_id: UUID
    """The customer it is linked to now (a merge moves it from its own identity's)."""


async def dialog(conn: AsyncConnection, dialog_id: UUID) -> DialogRow | None:
    row = (await conn.execute(select(dialogs).where(dialogs.c.dialog_id == dialog_id))).first()
    if row is None:
        return None
    facts = {name: row._mapping[name] for name in _FACT_COLUMNS}
    facts["channel_type"] = ChannelType(row.channel_type)
    return DialogRow(DialogFacts(**facts), row.lead_id, _access(row), row.customer_id)
