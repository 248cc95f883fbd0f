"""The read model: one projection function, used by every write and by a rebuild.

`project(conn, dialog, envelopes)` brings the tables up to date with events just decided on
`dialog` (whose state already includes them). Writers call it in the transaction that appends
the events, so the operator API reads its own writes; `rebuild` replays the event store through
the same function.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.domain import Dialog, describe
from openlines.dialogs.tables import conversations, dialogs, messages
from openlines.events.catalog import (
    DialogMessageEdited,
    DialogOpened,
    Direction,
    MessageAppended,
    MessageDeleted,
    MessageDeliveryUpdated,
)
from openlines.events.envelope import Envelope
from openlines.kit.db.tables import events
from openlines.kit.eventstore import EventStore


def system_message_id(event_id: uuid.UUID) -> uuid.UUID:
    """The timeline row a state change (assignment, close...) shows as; stable for rebuilds."""
    return uuid.uuid5(event_id, "system-message")


async def project(conn: AsyncConnection, dialog: Dialog, envelopes: Sequence[Envelope]) -> None:
    for env in envelopes:
        await _project_event(conn, dialog, env)
    await _upsert_dialog(conn, dialog)


async def _project_event(conn: AsyncConnection, dialog: Dialog, env: Envelope) -> None:
    event = env.payload
    if isinstance(event, DialogOpened):
        stmt = insert(conversations).values(
            conversation_key=event.conversation_key, dialog_id=event.dialog_id
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[conversations.c.conversation_key],
                set_={"dialog_id": stmt.excluded.dialog_id},
            )
        )
    elif isinstance(event, MessageAppended):
        await _insert_message(
            conn,
            message_id=event.message_id,
            dialog_id=event.dialog_id,
            seq=env.stream_version,
            direction=event.direction,
            author_id=event.author_id,
            text=event.text,
            attachments=[a.model_dump(mode="json") for a in event.attachments],
            reply_to=event.reply_to,
            client_message_id=event.client_message_id,
            external_message_id=event.external_message_id,
            conversation_key=event.conversation_key,
            status=event.status,
            sent_at=event.sent_at,
        )
    elif isinstance(event, MessageDeliveryUpdated):
        await conn.execute(
            update(messages)
            .where(messages.c.message_id == event.message_id)
            .values(
                status=event.status,
                status_reason=event.reason,
                provider_message_id=func.coalesce(
                    event.provider_message_id, messages.c.provider_message_id
                ),
            )
        )
    elif isinstance(event, DialogMessageEdited):
        await conn.execute(
            update(messages)
            .where(messages.c.message_id == event.message_id)
            .values(
                text=event.text,
                attachments=[a.model_dump(mode="json") for a in event.attachments],
                edited_at=event.edited_at,
            )
        )
    elif isinstance(event, MessageDeleted):
        await conn.execute(
            update(messages).where(messages.c.message_id == event.message_id).values(deleted=True)
        )
    else:
        text = describe(event)
        if text is not None:
            await _insert_message(
                conn,
                message_id=system_message_id(env.event_id),
                dialog_id=dialog.id,
                seq=env.stream_version,
                direction=Direction.SYSTEM,
                text=text,
                author_id=getattr(event, "actor_id", None),
                conversation_key=dialog.conversation_key,
                sent_at=env.occurred_at,
            )


async def _insert_message(conn: AsyncConnection, **values: Any) -> None:
    values.setdefault("attachments", [])
    values.setdefault("deleted", False)
    await conn.execute(
        insert(messages).values(**values).on_conflict_do_nothing(index_elements=["message_id"])
    )


def dialog_row(dialog: Dialog) -> dict[str, Any]:
    assert dialog.customer is not None and dialog.created_at and dialog.updated_at
    last = dialog.last_message
    crm = dialog.crm
    return {
        "id": dialog.id,
        "version": dialog.version,
        "line_id": dialog.line_id,
        "channel_id": dialog.channel_id,
        "channel_type": str(dialog.channel_type),
        "conversation_key": dialog.conversation_key,
        "status": str(dialog.status),
        "customer_name": dialog.customer.name,
        "customer_external_id": dialog.customer.external_id,
        "assignee_id": dialog.assignee_id,
        "participants": list(dialog.participants),
        "title": dialog.title,
        "last_message_text": last.text if last else None,
        "last_message_direction": str(last.direction) if last else None,
        "last_message_at": last.at if last else None,
        "unread_count": dialog.unread_count,
        "waiting_since": dialog.waiting_since,
        "crm_customer_id": crm.customer_id,
        "crm_lead_id": crm.lead_id,
        "crm_contact_id": crm.contact_id,
        "crm_company_id": crm.company_id,
        "crm_deal_id": crm.deal_id,
        "created_at": dialog.created_at,
        "updated_at": dialog.updated_at,
    }


async def _upsert_dialog(conn: AsyncConnection, dialog: Dialog) -> None:
    row = dialog_row(dialog)
    stmt = insert(dialogs).values(**row)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[dialogs.c.id],
            set_={k: stmt.excluded[k] for k in row if k != "id"},
            where=dialogs.c.version < stmt.excluded.version,
        )
    )


async def rebuild(conn: AsyncConnection, store: EventStore) -> int:
    """Drop the read model and replay every dialog stream through `project`.

    Streams go in the order they were opened, so each conversation ends up pointing at its
    latest dialog. Returns the number of dialogs rebuilt.
    """
    for table in (messages, dialogs, conversations):
        await conn.execute(delete(table))
    streams = await conn.execute(
        select(events.c.stream_id)
        .group_by(events.c.stream_id)
        .order_by(func.min(events.c.position))
    )
    count = 0
    for (stream_id,) in streams.all():
        envelopes = await store.load(conn, stream_id)
        dialog = Dialog.replay(
            uuid.UUID(stream_id), ((env.payload, env.occurred_at) for env in envelopes)
        )
        await project(conn, dialog, envelopes)
        count += 1
    return count
