"""The dialog_views table (notify's projection), in the caller's transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog.common import DialogStatus
from openlines.kit.access import Scope
from openlines.kit.counters import WorkColumns, count_query
from openlines.notify.domain import DialogView

_PEEK_SQL = (
    "SELECT line_id, status, assignee, participants, version, last_direction, inbound_count,"
    " read_marks FROM dialog_views WHERE dialog_id = :id"
)
_PEEK = text(_PEEK_SQL)
_LOAD = text(_PEEK_SQL + " FOR UPDATE")
_SAVE = text(
    "INSERT INTO dialog_views (dialog_id, line_id, status, assignee, participants, version,"
    " last_direction, inbound_count, read_marks) "
    "VALUES (:id, :line_id, :status, :assignee, :participants, :version, :last_direction,"
    " :inbound_count, :read_marks) "
    "ON CONFLICT (dialog_id) DO UPDATE SET line_id = EXCLUDED.line_id, "
    "status = EXCLUDED.status, assignee = EXCLUDED.assignee, "
    "participants = EXCLUDED.participants, version = EXCLUDED.version, "
    "last_direction = EXCLUDED.last_direction, inbound_count = EXCLUDED.inbound_count, "
    "read_marks = EXCLUDED.read_marks, updated_at = now()"
).bindparams(bindparam("read_marks", type_=JSONB))

# The same table as the counters see it (`openlines.kit.counters`): dialogs' read model has
# these columns too, and both count with one query.
dialog_views = Table(
    "dialog_views",
    MetaData(),
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("line_id", Text),
    Column("status", Text),
    Column("assignee", Text),
    Column("participants", ARRAY(Text)),
    Column("last_direction", Text),
    Column("inbound_count", Integer),
    Column("read_marks", JSONB),
)
WORK = WorkColumns.of(dialog_views, assignee_id="assignee")


async def counters(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    row = (await conn.execute(count_query(scope, WORK))).one()
    return dict(row._mapping)


async def load(
    conn: AsyncConnection, dialog_id: uuid.UUID, *, lock: bool = True
) -> DialogView | None:
    """The dialog's view; locked until commit (the projection's read-modify-write) unless
    `lock` is False (a read that changes nothing)."""
    row = (await conn.execute(_LOAD if lock else _PEEK, {"id": dialog_id})).first()
    if row is None:
        return None
    return DialogView(
        line_id=row.line_id,
        status=DialogStatus(row.status),
        assignee=row.assignee,
        participants=frozenset(row.participants),
        version=row.version,
        last_direction=row.last_direction,
        inbound_count=row.inbound_count,
        read_marks=dict(row.read_marks),
    )


async def save(conn: AsyncConnection, dialog_id: uuid.UUID, view: DialogView) -> None:
    await conn.execute(
        _SAVE,
        {
            "id": dialog_id,
            "line_id": view.line_id,
            "status": view.status.value,
            "assignee": view.assignee,
            "participants": sorted(view.participants),
            "version": view.version,
            "last_direction": view.last_direction,
            "inbound_count": view.inbound_count,
            "read_marks": dict(view.read_marks),
        },
    )
