"""The CRM read model: written from the customer events crm-link appends and from the dialog
facts it consumes; read by the API. Every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.crm_link.domain import DialogFacts
from openlines.crm_link.tables import customer_channels, customers, dialogs, leads
from openlines.events.catalog import (
    ChannelType,
    CustomerIdentified,
    DialogLinkedToCrm,
    DialogStatus,
    Direction,
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
    .values(customer_id=bindparam("link_customer_id"), lead_id=bindparam("link_lead_id"))
)

_RECORD_CUSTOMER = insert(customers).on_conflict_do_nothing(
    index_elements=[customers.c.customer_id]
)

_insert_channel = insert(customer_channels)
_UPSERT_CHANNEL = _insert_channel.on_conflict_do_update(
    index_elements=[customer_channels.c.customer_id, customer_channels.c.channel_id],
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
    return AccessFacts(row.line_id, row.status, row.assignee_id, tuple(row.participants))


async def apply(conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
    """Project customer events just appended."""
    for env in envelopes:
        event = env.payload
        if isinstance(event, CustomerIdentified):
            await _customer_identified(conn, event, env.occurred_at)
        elif isinstance(event, LeadCreated):
            await _lead_created(conn, event, env.occurred_at)
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


# -- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogRow:
    facts: DialogFacts
    lead_id: UUID | None
    access: AccessFacts


async def dialog(conn: AsyncConnection, dialog_id: UUID) -> DialogRow | None:
    row = (await conn.execute(select(dialogs).where(dialogs.c.dialog_id == dialog_id))).first()
    if row is None:
        return None
    facts = {name: row._mapping[name] for name in _FACT_COLUMNS}
    facts["channel_type"] = ChannelType(row.channel_type)
    return DialogRow(DialogFacts(**facts), row.lead_id, _access(row))


def access_of(dialog_json: dict[str, Any]) -> AccessFacts:
    """The access facts of one of `lead_json`'s dialogs."""
    return AccessFacts(
        dialog_json["line_id"],
        dialog_json["status"],
        dialog_json["assignee_id"],
        tuple(dialog_json["participants"]),
    )


async def lead_json(conn: AsyncConnection, lead_id: UUID) -> dict[str, Any] | None:
    lead = (await conn.execute(select(leads).where(leads.c.lead_id == lead_id))).first()
    if lead is None:
        return None
    linked = await conn.execute(
        select(dialogs)
        .where(dialogs.c.lead_id == lead_id)
        .order_by(dialogs.c.last_activity_at.desc(), dialogs.c.dialog_id)
    )
    channels = await conn.execute(
        select(customer_channels)
        .where(customer_channels.c.customer_id == lead.customer_id)
        .order_by(customer_channels.c.channel_id)
    )
    return {
        "id": str(lead.lead_id),
        "customer_id": str(lead.customer_id),
        "title": lead.title,
        "status": lead.status,
        "auto": lead.auto,
        "source_dialog_id": str(lead.source_dialog_id) if lead.source_dialog_id else None,
        "created_at": lead.created_at.isoformat(),
        "dialogs": [
            {
                "dialog_id": str(d.dialog_id),
                "line_id": d.line_id,
                "channel_id": d.channel_id,
                "channel_type": d.channel_type,
                "title": d.title,
                "opened_at": d.opened_at.isoformat(),
                "last_activity_at": d.last_activity_at.isoformat(),
                "last_message": d.last_message,
                "status": d.status,
                "assignee_id": d.assignee_id,
                "participants": list(d.participants),
            }
            for d in linked
        ],
        "channels": [
            {
                "channel_type": c.channel_type,
                "channel_id": c.channel_id,
                "external_user_id": c.external_user_id,
                "name": c.name,
            }
            for c in channels
        ],
    }
