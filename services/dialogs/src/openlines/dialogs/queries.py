"""Read-side queries: the dialog list (tabs, filters, keyset pages), one dialog, its timeline."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy import ColumnElement, Row, and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.access import Viewer
from openlines.dialogs.tables import dialogs, messages
from openlines.kit.access import visible_where

TABS = ("unassigned", "active", "closed", "spam", "all")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class BadCursor(ValueError):
    pass


# A cursor is client input once it leaves: its decoded form is validated like any body
# (a forged `[date, 1]`, a list, a dict, a float... are refused, not a 500).
_CURSOR = TypeAdapter(tuple[AwareDatetime, UUID])


@dataclass(frozen=True)
class Cursor:
    """Position after the last dialog of a page: (updated_at, id), newest first."""

    updated_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.updated_at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            # Strict: in JSON a datetime and a UUID are strings, nothing else.
            updated_at, dialog_id = _CURSOR.validate_json(raw, strict=True)
        except ValueError as exc:  # binascii.Error and ValidationError are ValueErrors
            raise BadCursor("cursor is not one this API returned") from exc
        return cls(updated_at, dialog_id)


@dataclass(frozen=True)
class ListQuery:
    tab: str = "all"
    line: str | None = None
    channel: str | None = None
    assignee: str | None = None
    q: str | None = None
    cursor: Cursor | None = None
    limit: int = DEFAULT_LIMIT


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The policy's SQL twin of `Scope.can_see`, over the dialogs table."""
    return visible_where(
        viewer,
        line_id=dialogs.c.line_id,
        status=dialogs.c.status,
        assignee_id=dialogs.c.assignee_id,
        participants=dialogs.c.participants,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_dialogs(
    conn: AsyncConnection, viewer: Viewer, query: ListQuery
) -> tuple[Sequence[Row], Cursor | None]:
    """A page of visible dialogs, newest update first, and the cursor of the next page."""
    conditions: list[ColumnElement[bool]] = [visible_to(viewer)]
    if query.tab != "all":
        # For operators "active" is "mine": visibility already limits it to their dialogs.
        conditions.append(dialogs.c.status == query.tab)
    if query.line:
        conditions.append(dialogs.c.line_id == query.line)
    if query.channel:
        conditions.append(dialogs.c.channel_id == query.channel)
    if query.assignee:
        conditions.append(dialogs.c.assignee_id == query.assignee)
    if query.q:
        pattern = _like(query.q)
        conditions.append(
            or_(
                dialogs.c.title.ilike(pattern, escape="\\"),
                dialogs.c.customer_name.ilike(pattern, escape="\\"),
                dialogs.c.last_message_text.ilike(pattern, escape="\\"),
            )
        )
    if query.cursor is not None:
        conditions.append(
            tuple_(dialogs.c.updated_at, dialogs.c.id)
            < tuple_(query.cursor.updated_at, query.cursor.id)
        )
    result = await conn.execute(
        select(dialogs)
        .where(and_(*conditions))
        .order_by(dialogs.c.updated_at.desc(), dialogs.c.id.desc())
        .limit(query.limit + 1)
    )
    rows = result.all()
    if len(rows) <= query.limit:
        return rows, None
    page = rows[: query.limit]
    last = page[-1]
    return page, Cursor(last.updated_at, last.id)


async def get_dialog(conn: AsyncConnection, dialog_id: UUID) -> Row | None:
    result = await conn.execute(select(dialogs).where(dialogs.c.id == dialog_id))
    return result.first()


async def timeline(conn: AsyncConnection, dialog_id: UUID) -> Sequence[Row]:
    result = await conn.execute(
        select(messages).where(messages.c.dialog_id == dialog_id).order_by(messages.c.seq)
    )
    return result.all()


async def get_message(conn: AsyncConnection, dialog_id: UUID, message_id: UUID) -> Row | None:
    result = await conn.execute(
        select(messages).where(
            messages.c.dialog_id == dialog_id, messages.c.message_id == message_id
        )
    )
    return result.first()
