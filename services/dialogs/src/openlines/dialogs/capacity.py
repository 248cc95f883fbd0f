"""The max_dialogs rule for manual takes: an operator's load as dialogs counts it.

An operator who takes a dialog by hand (take, the first reply to an unassigned dialog, reopen)
may not go beyond their `max_dialogs`, unless they are a supervisor or the dialog's line sets
`manual_take_beyond_capacity`. dialogs counts the open dialogs the read model shows assigned to
the operator, after taking a per-operator transaction lock: two concurrent takes by one
operator are serialised, and the second counts the first (READ COMMITTED: the count runs after
the lock was granted, so it sees the other transaction's commit).
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.domain import DialogStatus, Load
from openlines.dialogs.tables import dialogs
from openlines.events.lines import LinesConfig

# Held until commit; the key is namespaced so it does not meet other services' advisory locks.
LOCK_OPERATOR = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0)))
ACTIVE_DIALOGS = (
    select(func.count())
    .select_from(dialogs)
    .where(dialogs.c.assignee_id == bindparam("op"), dialogs.c.status == DialogStatus.ACTIVE)
)


def limit_applies(lines: LinesConfig, line_id: str, *, is_supervisor: bool) -> bool:
    if is_supervisor:
        return False
    line = lines.line(line_id)
    return line is None or not line.manual_take_beyond_capacity


async def locked_load(conn: AsyncConnection, lines: LinesConfig, operator_id: str) -> Load:
    """The operator's load, with their takes locked until this transaction ends."""
    await conn.execute(LOCK_OPERATOR, {"key": f"openlines.dialogs.take:{operator_id}"})
    active = await conn.scalar(ACTIVE_DIALOGS, {"op": operator_id}) or 0
    configured = lines.operator(operator_id)
    # Like routing: an operator missing from the config has no capacity.
    return Load(active=active, limit=configured.max_dialogs if configured is not None else 0)
