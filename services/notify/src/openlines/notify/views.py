"""The dialog_views table (notify's projection), in the caller's transaction."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog.common import DialogStatus
from openlines.notify.domain import DialogView

_LOAD = text(
    "SELECT line_id, status, assignee, participants, version FROM dialog_views "
    "WHERE dialog_id = :id FOR UPDATE"
)
_PEEK = text(
    "SELECT line_id, status, assignee, participants, version FROM dialog_views "
    "WHERE dialog_id = :id"
)
_SAVE = text(
    "INSERT INTO dialog_views (dialog_id, line_id, status, assignee, participants, version) "
    "VALUES (:id, :line_id, :status, :assignee, :participants, :version) "
    "ON CONFLICT (dialog_id) DO UPDATE SET line_id = EXCLUDED.line_id, "
    "status = EXCLUDED.status, assignee = EXCLUDED.assignee, "
    "participants = EXCLUDED.participants, version = EXCLUDED.version, updated_at = now()"
)


async def load(conn: AsyncConnection, dialog_id: UUID, *, lock: bool = True) -> DialogView | None:
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
    )


async def save(conn: AsyncConnection, dialog_id: UUID, view: DialogView) -> None:
    await conn.execute(
        _SAVE,
        {
            "id": dialog_id,
            "line_id": view.line_id,
            "status": view.status.value,
            "assignee": view.assignee,
            "participants": sorted(view.participants),
            "version": view.version,
        },
    )
