"""SQL for the operators' workspace tables (`tables.workspace`: quick replies, drafts). Every
function runs in the caller's connection or transaction.

These tables are not derived from events, so nothing here is replayed or rebuilt; who may
read or write a row is the API's question (the access policy), not this module's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Row, and_, any_, delete, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.access import Viewer
from openlines.dialogs.cursors import decode_cursor, encode_cursor
from openlines.dialogs.tables import drafts, messages, quick_replies
from openlines.kit.access import lines_visible_where

_qr = quick_replies.c


_CURSOR = TypeAdapter(tuple[str, UUID])


@dataclass(frozen=True)
class QuickReplyCursor:
    """Position after the last quick reply of a page: (title, id), in title order."""

    title: str
    id: UUID

    def encode(self) -> str:
        return encode_cursor([self.title, str(self.id)])

    @classmethod
    def decode(cls, token: str) -> QuickReplyCursor:
        return cls(*decode_cursor(token, _CURSOR))


@dataclass(frozen=True)
class QuickReplyQuery:
    q: str | None = None
    category: str | None = None
    line: str | None = None
    cursor: QuickReplyCursor | None = None
    limit: int = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- quick replies --------------------------------------------------------------------------


async def list_quick_replies(
    conn: AsyncConnection, viewer: Viewer, query: QuickReplyQuery
) -> tuple[Sequence[Row], QuickReplyCursor | None]:
    """A page of the quick replies the viewer may read, by title, and the next page's cursor."""
    conditions: list[ColumnElement[bool]] = [lines_visible_where(viewer, _qr.lines)]
    if query.q:
        pattern = _like(query.q)
        conditions.append(
            or_(_qr.title.ilike(pattern, escape="\\"), _qr.text.ilike(pattern, escape="\\"))
        )
    if query.category:
        conditions.append(_qr.category == query.category)
    if query.line:
        conditions.append(literal(query.line) == any_(_qr.lines))
    if query.cursor is not None:
        conditions.append(tuple_(_qr.title, _qr.id) > tuple_(query.cursor.title, query.cursor.id))
    found = await conn.execute(
        select(quick_replies)
        .where(and_(*conditions))
        .order_by(_qr.title, _qr.id)
        .limit(query.limit + 1)
    )
    rows = found.all()
    if len(rows) <= query.limit:
        return rows, None
    page = rows[: query.limit]
    return page, QuickReplyCursor(page[-1].title, page[-1].id)


async def get_quick_reply(
    conn: AsyncConnection, reply_id: UUID, *, lock: bool = False
) -> Row | None:
    query = select(quick_replies).where(_qr.id == reply_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def create_quick_reply(conn: AsyncConnection, values: dict[str, Any]) -> Row:
    created = await conn.execute(insert(quick_replies).values(**values).returning(quick_replies))
    return created.one()


async def update_quick_reply(
    conn: AsyncConnection, reply_id: UUID, values: dict[str, Any]
) -> Row | None:
    updated = await conn.execute(
        update(quick_replies).where(_qr.id == reply_id).values(**values).returning(quick_replies)
    )
    return updated.first()


async def delete_quick_reply(conn: AsyncConnection, reply_id: UUID) -> None:
    await conn.execute(delete(quick_replies).where(_qr.id == reply_id))


async def message(conn: AsyncConnection, message_id: UUID) -> Row | None:
    """A timeline message (the read model's), e.g. to save it as a quick reply."""
    return (await conn.execute(select(messages).where(messages.c.message_id == message_id))).first()


# -- drafts ---------------------------------------------------------------------------------

_draft_key = (drafts.c.operator_id, drafts.c.dialog_id)
_upsert = insert(drafts)
PUT_DRAFT = _upsert.on_conflict_do_update(
    index_elements=list(_draft_key),
    set_={"text": _upsert.excluded.text, "updated_at": _upsert.excluded.updated_at},
).returning(drafts)


async def get_draft(conn: AsyncConnection, operator_id: str, dialog_id: UUID) -> Row | None:
    found = await conn.execute(
        select(drafts).where(drafts.c.operator_id == operator_id, drafts.c.dialog_id == dialog_id)
    )
    return found.first()


async def put_draft(
    conn: AsyncConnection, operator_id: str, dialog_id: UUID, text: str, now: datetime
) -> Row:
    saved = await conn.execute(
        PUT_DRAFT,
        {"operator_id": operator_id, "dialog_id": dialog_id, "text": text, "updated_at": now},
    )
    return saved.one()


async def clear_draft(conn: AsyncConnection, operator_id: str, dialog_id: UUID) -> None:
    await conn.execute(
        delete(drafts).where(drafts.c.operator_id == operator_id, drafts.c.dialog_id == dialog_id)
    )
