"""The read model: one projection function, used by every write and by a rebuild.

`project(conn, dialog, envelopes)` brings the read model's tables (`tables.read_model`) up to
date with events just decided on `dialog` (whose state already includes them). Writers call it
in the transaction that appends the events, so the operator API reads its own writes; `rebuild`
replays the event store through the same function, in place or into another schema. It never
touches the write side's tables (`store`), which are not derived from the events alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Text, Update, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import search
from openlines.dialogs.domain import Dialog, describe
from openlines.dialogs.search import SEARCH_TEXTS
from openlines.dialogs.tables import SEARCH_COLUMNS, dialogs, messages, read_model
from openlines.events.catalog import (
    DialogMessageEdited,
    Direction,
    MessageAppended,
    MessageDeleted,
    MessageDeliveryUpdated,
)
from openlines.events.envelope import Envelope
from openlines.kit.db.engine import check_schema_name
from openlines.kit.db.tables import events
from openlines.kit.eventstore import EventStore

# Built once: constructing an upsert of this size per call costs ~5x executing it (measured
# 680 vs 136 us of CPU), so every statement below takes its values as parameters.
# The batch's new message texts ride on the upsert (`search_texts`), folded into the row's
# search vector in the same statement: no extra round trip per message.
_insert_dialog = insert(dialogs).values(messages_search=search.vector_of(SEARCH_TEXTS))
UPSERT_DIALOG = _insert_dialog.on_conflict_do_update(
    index_elements=[dialogs.c.id],
    set_={
        **{
            c.name: _insert_dialog.excluded[c.name]
            for c in dialogs.c
            if c.name != "id" and c.name not in SEARCH_COLUMNS
        },
        "messages_search": search.folded(_insert_dialog.excluded.messages_search),
    },
    where=dialogs.c.version < _insert_dialog.excluded.version,
)
INSERT_MESSAGE = insert(messages).on_conflict_do_nothing(index_elements=["message_id"])


def _update_message(**values: Any) -> Update:
    return update(messages).where(messages.c.message_id == bindparam("m_id")).values(**values)


UPDATE_DELIVERY = _update_message(
    status=bindparam("status"),
    status_reason=bindparam("reason"),
    provider_message_id=func.coalesce(
        bindparam("provider_message_id", type_=Text), messages.c.provider_message_id
    ),
)
UPDATE_TEXT = _update_message(
    text=bindparam("text"), attachments=bindparam("attachments"), edited_at=bindparam("edited_at")
)
MARK_DELETED = _update_message(deleted=True)
# Every message row names all its columns, so INSERT_MESSAGE compiles once.
_MESSAGE_DEFAULTS: dict[str, Any] = {
    "author_id": None,
    "text": None,
    "attachments": [],
    "reply_to": None,
    "mentions": [],
    "client_message_id": None,
    "external_message_id": None,
    "status": None,
    "status_reason": None,
    "provider_message_id": None,
    "edited_at": None,
    "deleted": False,
}


def system_message_id(event_id: uuid.UUID) -> uuid.UUID:
    """The timeline row a state change (assignment, close...) shows as; stable for rebuilds."""
    return uuid.uuid5(event_id, "system-message")


async def project(conn: AsyncConnection, dialog: Dialog, envelopes: Sequence[Envelope]) -> None:
    for env in envelopes:
        await _project_event(conn, dialog, env)
    texts = [
        env.payload.text
        for env in envelopes
        if isinstance(env.payload, MessageAppended)
        and search.is_searched(env.payload.direction, env.payload.text)
        and env.payload.text
    ]
    await conn.execute(UPSERT_DIALOG, {**dialog_row(dialog), "search_texts": " ".join(texts)})
    if any(isinstance(env.payload, DialogMessageEdited | MessageDeleted) for env in envelopes):
        # An edited or deleted message's old words must stop matching: from the timeline.
        await search.recompute(conn, dialog.id)


async def _project_event(conn: AsyncConnection, dialog: Dialog, env: Envelope) -> None:
    event = env.payload
    if isinstance(event, MessageAppended):
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
            mentions=list(event.mentions),
            client_message_id=event.client_message_id,
            external_message_id=event.external_message_id,
            conversation_key=event.conversation_key,
            status=event.status,
            sent_at=event.sent_at,
        )
    elif isinstance(event, MessageDeliveryUpdated):
        await conn.execute(
            UPDATE_DELIVERY,
            {
                "m_id": event.message_id,
                "status": event.status,
                "reason": event.reason,
                "provider_message_id": event.provider_message_id,
            },
        )
    elif isinstance(event, DialogMessageEdited):
        await conn.execute(
            UPDATE_TEXT,
            {
                "m_id": event.message_id,
                "text": event.text,
                "attachments": [a.model_dump(mode="json") for a in event.attachments],
                "edited_at": event.edited_at,
            },
        )
    elif isinstance(event, MessageDeleted):
        await conn.execute(MARK_DELETED, {"m_id": event.message_id})
    # State changes (a deletion too) show as staff-only system lines.
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
            reply_to=getattr(event, "message_id", None),
            conversation_key=dialog.conversation_key,
            sent_at=env.occurred_at,
        )


async def _insert_message(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(INSERT_MESSAGE, {**_MESSAGE_DEFAULTS, **values})


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
        "customer_username": dialog.customer.username,
        "customer_phone": dialog.customer.phone,
        "customer_email": dialog.customer.email,
        "assignee_id": dialog.assignee_id,
        "participants": list(dialog.participants),
        "pinned_to": dialog.pinned_to,
        "mentioned": list(dialog.mentioned),
        "title": dialog.title,
        "last_message_text": last.text if last else None,
        "last_message_direction": str(last.direction) if last else None,
        "last_message_at": last.at if last else None,
        "inbound_count": dialog.inbound_count,
        "read_marks": dict(dialog.read_marks),
        "waiting_since": dialog.waiting_since,
        "crm_customer_id": crm.customer_id,
        "crm_lead_id": crm.lead_id,
        "crm_contact_id": crm.contact_id,
        "crm_company_id": crm.company_id,
        "crm_deal_id": crm.deal_id,
        "created_at": dialog.created_at,
        "updated_at": dialog.updated_at,
        "closed_at": dialog.closed_at,
        "ratings": ratings_json(dialog),
        "classification": classification_json(dialog),
    }


def ratings_json(dialog: Dialog) -> dict[str, Any]:
    ratings: dict[str, Any] = {}
    if dialog.customer_rating is not None:
        score, scale = dialog.customer_rating
        ratings["customer"] = {"score": score, "scale": scale}
    if dialog.operator_rating is not None:
        by, score, scale, comment = dialog.operator_rating
        ratings["operator"] = {"score": score, "scale": scale, "comment": comment, "by": by}
    return ratings


def classification_json(dialog: Dialog) -> dict[str, Any] | None:
    if dialog.classification is None:
        return None
    type_, reasons, status, by = dialog.classification
    return {"type": type_, "reasons": list(reasons), "status": status, "by": by}


async def rebuild(conn: AsyncConnection, store: EventStore, *, into: str | None = None) -> int:
    """Empty the read model and replay every dialog stream through `project`.

    `into`: a schema to build the read model in, beside the live one (its tables are created
    like the live ones when missing), so that it can be switched to once complete; None
    rebuilds the live read model in place. The events are read from the caller's schema
    either way, and the write side's tables are never touched. Returns the number of dialogs.
    """
    if into is not None:
        await create_read_model(conn, into)
    async with _read_model_in(conn, into):
        for table in reversed(read_model.sorted_tables):
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
        async with _read_model_in(conn, into):
            await project(conn, dialog, envelopes)
        count += 1
    return count


@asynccontextmanager
async def _read_model_in(conn: AsyncConnection, schema: str | None) -> AsyncIterator[None]:
    """Statements on `conn` name `schema`'s tables meanwhile (the events stay the caller's:
    they are read outside). SQLAlchemy sets execution options on the connection in place."""
    if schema is None:
        yield
        return
    await conn.execution_options(schema_translate_map={None: schema})
    try:
        yield
    finally:
        await conn.execution_options(schema_translate_map=None)


async def create_read_model(conn: AsyncConnection, schema: str) -> None:
    """The read model's tables in `schema`, shaped exactly like the live ones (columns,
    defaults, indexes, comments), which the migrations made."""
    check_schema_name(schema)
    live = await conn.scalar(text("SELECT current_schema()"))
    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    for table in read_model.sorted_tables:
        await conn.execute(
            text(
                f'CREATE TABLE IF NOT EXISTS "{schema}"."{table.name}"'
                f' (LIKE "{live}"."{table.name}" INCLUDING ALL)'
            )
        )
