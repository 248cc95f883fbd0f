"""SQL for routing's tables. Every function runs inside the caller's transaction.

Statements are built once at module level and executed with a parameter dict: building one
per call (and SQLAlchemy computing its cache key) costs several times more CPU than running
it. Each statement always receives the same parameter names, so its compiled form is reused.
Bind names in UPDATEs differ from the column names: SQLAlchemy would otherwise turn a
parameter named like a column into a SET of that column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Update, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import PresenceStatus
from openlines.events.lines import LinesConfig
from openlines.routing.clocks import DialogClock, SlaMarker
from openlines.routing.domain import Candidate, DialogSlot, LoadChange, SlotStatus
from openlines.routing.tables import dialog_clocks, dialog_slots, operators, pins, stale_offers

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


async def lock_routing(conn: AsyncConnection, schema: str) -> None:
    """Serialise routing's writers (consumers, timers, presence) until commit.

    Capacity is safe without it (see `try_reserve`); the lock is about deadlocks: a drain
    reserves several operators' rows in whatever order the strategy picks them, and two drains
    doing that concurrently would deadlock each other.
    """
    await conn.execute(_LOCK, {"key": f"openlines-routing:{schema}"})


# -- operators ----------------------------------------------------------------------------------


def _insert_offline_operator() -> Insert:
    """A new operator row: offline, no load; binds `operator_id` and `max_dialogs`."""
    return insert(operators).values(
        operator_id=bindparam("operator_id"),
        status=PresenceStatus.OFFLINE.value,
        max_dialogs=bindparam("max_dialogs"),
        active=0,
        reserved=0,
    )


def _sync_operator_stmt() -> Insert:
    stmt = _insert_offline_operator()
    return stmt.on_conflict_do_update(
        index_elements=[operators.c.operator_id],
        set_={"max_dialogs": stmt.excluded.max_dialogs},
    )


_SYNC_OPERATOR = _sync_operator_stmt()

_ENSURE_OPERATOR = _insert_offline_operator().on_conflict_do_nothing(
    index_elements=[operators.c.operator_id]
)


async def sync_operators(conn: AsyncConnection, lines: LinesConfig) -> None:
    """Create a row per configured operator (offline) and take max_dialogs from the config."""
    for op in lines.operators:
        await conn.execute(_SYNC_OPERATOR, {"operator_id": op.id, "max_dialogs": op.max_dialogs})


async def ensure_operator(conn: AsyncConnection, operator_id: str, max_dialogs: int) -> None:
    await conn.execute(_ENSURE_OPERATOR, {"operator_id": operator_id, "max_dialogs": max_dialogs})


_PRESENCE_FOR_UPDATE = (
    select(operators.c.status)
    .where(operators.c.operator_id == bindparam("operator_id"))
    .with_for_update()
)


async def presence_for_update(conn: AsyncConnection, operator_id: str) -> PresenceStatus | None:
    row = (await conn.execute(_PRESENCE_FOR_UPDATE, {"operator_id": operator_id})).first()
    return PresenceStatus(row.status) if row is not None else None


_SET_PRESENCE = (
    update(operators)
    .where(operators.c.operator_id == bindparam("op_id"))
    .values(status=bindparam("new_status"), status_changed_at=func.now())
)


async def set_presence(conn: AsyncConnection, operator_id: str, status: PresenceStatus) -> None:
    await conn.execute(_SET_PRESENCE, {"op_id": operator_id, "new_status": status.value})


def _apply_load_stmt(*, assigned: bool) -> Update:
    values: dict[str, object] = {
        "active": operators.c.active + bindparam("active_delta"),
        "reserved": operators.c.reserved + bindparam("reserved_delta"),
    }
    if assigned:
        values["last_assigned_at"] = func.clock_timestamp()
    return update(operators).where(operators.c.operator_id == bindparam("op_id")).values(**values)


_APPLY_LOAD = _apply_load_stmt(assigned=False)
_APPLY_LOAD_ASSIGNED = _apply_load_stmt(assigned=True)


async def apply_load(conn: AsyncConnection, delta: dict[str, LoadChange]) -> None:
    """Move the counters; an operator who gained a dialog counts as just assigned (rotation)."""
    for operator_id, change in sorted(delta.items()):
        await ensure_operator(conn, operator_id, max_dialogs=0)
        await conn.execute(
            _APPLY_LOAD_ASSIGNED if change.total > 0 else _APPLY_LOAD,
            {
                "op_id": operator_id,
                "active_delta": change.active,
                "reserved_delta": change.reserved,
            },
        )


_TRY_RESERVE = (
    update(operators)
    .where(
        operators.c.operator_id == bindparam("op_id"),
        operators.c.status == PresenceStatus.ONLINE.value,
        operators.c.active + operators.c.reserved < operators.c.max_dialogs,
    )
    # clock_timestamp, not now(): several reservations in one transaction must still rotate.
    .values(reserved=operators.c.reserved + 1, last_assigned_at=func.clock_timestamp())
    .returning(operators.c.operator_id)
)


async def try_reserve(conn: AsyncConnection, operator_id: str) -> bool:
    """Take one unit of the operator's capacity, atomically.

    The condition is re-checked against the latest committed row after waiting for its lock,
    so concurrent reservations can never push active + reserved past max_dialogs.
    """
    result = await conn.execute(_TRY_RESERVE, {"op_id": operator_id})
    return result.first() is not None


_HOLD_STALE_OFFER = (
    insert(stale_offers)
    .values(
        dialog_id=bindparam("dialog_id"),
        operator_id=bindparam("operator_id"),
        expired_at=func.now(),
    )
    .on_conflict_do_nothing()
    .returning(stale_offers.c.operator_id)
)
_RELEASE_STALE_OFFERS = (
    delete(stale_offers)
    .where(stale_offers.c.dialog_id == bindparam("dialog_id"))
    .returning(stale_offers.c.operator_id)
)


async def hold_stale_offer(conn: AsyncConnection, dialog_id: UUID, operator_id: str) -> bool:
    """Keep the unit of an expired reservation taken; False if one is held already (each
    operator has at most one pending AssignDialog per dialog that can still be applied)."""
    found = await conn.execute(
        _HOLD_STALE_OFFER, {"dialog_id": dialog_id, "operator_id": operator_id}
    )
    return found.first() is not None


async def release_stale_offers(conn: AsyncConnection, dialog_id: UUID) -> list[str]:
    """Forget the dialog's stale offers; returns whose capacity they held."""
    found = await conn.execute(_RELEASE_STALE_OFFERS, {"dialog_id": dialog_id})
    return sorted(row.operator_id for row in found)


# expanding: one cached statement whatever the number of ids.
_CANDIDATES = select(operators).where(
    operators.c.operator_id.in_(bindparam("operator_ids", expanding=True))
)


async def candidates(conn: AsyncConnection, operator_ids: Sequence[str]) -> list[Candidate]:
    if not operator_ids:
        return []
    rows = await conn.execute(_CANDIDATES, {"operator_ids": list(operator_ids)})
    return [
        Candidate(
            operator_id=row.operator_id,
            status=PresenceStatus(row.status),
            active=row.active,
            reserved=row.reserved,
            max_dialogs=row.max_dialogs,
            last_assigned_at=row.last_assigned_at,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class OperatorRow:
    operator_id: str
    status: str
    status_changed_at: datetime | None
    max_dialogs: int
    active: int
    reserved: int


_LIST_OPERATORS = (
    select(
        operators.c.operator_id,
        operators.c.status,
        operators.c.status_changed_at,
        operators.c.max_dialogs,
        operators.c.active,
        operators.c.reserved,
    )
    .where(operators.c.operator_id.in_(bindparam("operator_ids", expanding=True)))
    .order_by(operators.c.operator_id)
)


async def list_operators(conn: AsyncConnection, operator_ids: Iterable[str]) -> list[OperatorRow]:
    rows = await conn.execute(_LIST_OPERATORS, {"operator_ids": list(operator_ids)})
    return [OperatorRow(**row._mapping) for row in rows]


# -- dialog slots and the queue -------------------------------------------------------------------


def _slot(row: object) -> DialogSlot:
    return DialogSlot(
        dialog_id=row.dialog_id,  # type: ignore[attr-defined]
        line_id=row.line_id,  # type: ignore[attr-defined]
        status=SlotStatus(row.status),  # type: ignore[attr-defined]
        operator_id=row.operator_id,  # type: ignore[attr-defined]
        passed_over=row.passed_over,  # type: ignore[attr-defined]
    )


_LOAD_SLOT = (
    select(dialog_slots).where(dialog_slots.c.dialog_id == bindparam("dialog_id")).with_for_update()
)


async def load_slot(conn: AsyncConnection, dialog_id: UUID) -> DialogSlot | None:
    row = (await conn.execute(_LOAD_SLOT, {"dialog_id": dialog_id})).first()
    return _slot(row) if row is not None else None


def _save_slot_stmt(*, restart_wait: bool) -> Insert:
    stmt = insert(dialog_slots).values(
        dialog_id=bindparam("dialog_id"),
        line_id=bindparam("line_id"),
        status=bindparam("status"),
        operator_id=bindparam("operator_id"),
        queued_at=bindparam("queued_at"),
        priority=0,
        updated_at=func.now(),
        passed_over=bindparam("passed_over"),
    )
    set_ = {
        "line_id": stmt.excluded.line_id,
        "status": stmt.excluded.status,
        "operator_id": stmt.excluded.operator_id,
        "updated_at": stmt.excluded.updated_at,
        "passed_over": stmt.excluded.passed_over,
    }
    if restart_wait:
        set_["queued_at"] = stmt.excluded.queued_at
    return stmt.on_conflict_do_update(index_elements=[dialog_slots.c.dialog_id], set_=set_)


# An update either restarts the wait or keeps the stored one: two shapes, both prebuilt.
_SAVE_SLOT_KEEP_WAIT = _save_slot_stmt(restart_wait=False)
_SAVE_SLOT_RESTART_WAIT = _save_slot_stmt(restart_wait=True)


async def save_slot(
    conn: AsyncConnection, slot: DialogSlot, *, queued_at: datetime | None = None
) -> None:
    """Insert or update the slot; `queued_at` (re)starts its wait, otherwise the wait is kept."""
    await conn.execute(
        _SAVE_SLOT_KEEP_WAIT if queued_at is None else _SAVE_SLOT_RESTART_WAIT,
        {
            "dialog_id": slot.dialog_id,
            "line_id": slot.line_id,
            "status": slot.status.value,
            "operator_id": slot.operator_id,
            "queued_at": queued_at,
            "passed_over": slot.passed_over,
        },
    )


_QUEUE_ORDER = (
    dialog_slots.c.priority.desc(),
    dialog_slots.c.queued_at,
    dialog_slots.c.dialog_id,
)

_NEXT_WAITING = (
    select(dialog_slots)
    .where(
        dialog_slots.c.line_id == bindparam("line_id"),
        dialog_slots.c.status == SlotStatus.QUEUED.value,
    )
    .order_by(*_QUEUE_ORDER)
    .limit(1)
    .with_for_update(skip_locked=True)
)


async def next_waiting(conn: AsyncConnection, line_id: str) -> DialogSlot | None:
    """The head of the line's queue (highest priority, then longest waiting)."""
    row = (await conn.execute(_NEXT_WAITING, {"line_id": line_id})).first()
    return _slot(row) if row is not None else None


_ENTRY = text(
    "SELECT count(*) AS position, min(me.queued_at) AS queued_at "
    "FROM dialog_slots d JOIN dialog_slots me ON me.dialog_id = :id "
    "WHERE d.line_id = me.line_id AND d.status = 'queued' AND (d.priority > me.priority "
    "OR (d.priority = me.priority AND (d.queued_at, d.dialog_id) <= (me.queued_at, me.dialog_id)))"
)


async def queue_entry(conn: AsyncConnection, dialog_id: UUID) -> tuple[int, datetime]:
    """A queued dialog's 1-based position in its line's queue, and since when it waits."""
    row = (await conn.execute(_ENTRY, {"id": dialog_id})).one()
    return int(row.position), row.queued_at


@dataclass(frozen=True)
class QueueStats:
    line_id: str
    waiting: int
    oldest_waiting_since: datetime | None


_QUEUE_STATS = (
    select(
        dialog_slots.c.line_id,
        func.count().label("waiting"),
        func.min(dialog_slots.c.queued_at).label("oldest"),
    )
    .where(
        dialog_slots.c.line_id.in_(bindparam("line_ids", expanding=True)),
        dialog_slots.c.status == SlotStatus.QUEUED.value,
    )
    .group_by(dialog_slots.c.line_id)
)


async def queue_stats(conn: AsyncConnection, line_ids: Sequence[str]) -> dict[str, QueueStats]:
    rows = await conn.execute(_QUEUE_STATS, {"line_ids": list(line_ids)})
    found = {row.line_id: QueueStats(row.line_id, row.waiting, row.oldest) for row in rows}
    return {line: found.get(line, QueueStats(line, 0, None)) for line in line_ids}


_LOAD_COUNTS = (
    select(
        dialog_slots.c.operator_id,
        func.count().filter(dialog_slots.c.status == SlotStatus.ACTIVE.value).label("active"),
        func.count().filter(dialog_slots.c.status == SlotStatus.RESERVED.value).label("reserved"),
    )
    .where(dialog_slots.c.operator_id.is_not(None))
    .group_by(dialog_slots.c.operator_id)
)


async def load_counts(conn: AsyncConnection) -> dict[str, LoadChange]:
    """Recount every operator's load from the slots (checks and tests)."""
    rows = await conn.execute(_LOAD_COUNTS)
    return {row.operator_id: LoadChange(row.active, row.reserved) for row in rows}


# -- pins ("pin to me") ------------------------------------------------------------------------

_pin = insert(pins).values(
    line_id=bindparam("line_id"),
    conversation_key=bindparam("key"),
    operator_id=bindparam("op_id"),
    pinned_at=func.now(),
)
_PIN = _pin.on_conflict_do_update(
    index_elements=[pins.c.line_id, pins.c.conversation_key],
    set_={"operator_id": _pin.excluded.operator_id, "pinned_at": _pin.excluded.pinned_at},
)
# Only the holder's pin: an unpin that arrives after someone else pinned leaves theirs.
_UNPIN = delete(pins).where(
    pins.c.line_id == bindparam("line_id"),
    pins.c.conversation_key == bindparam("key"),
    pins.c.operator_id == bindparam("op_id"),
)
_PINNED_TO = select(pins.c.operator_id).where(
    pins.c.line_id == bindparam("line_id"), pins.c.conversation_key == bindparam("key")
)


async def pin(conn: AsyncConnection, line_id: str, key: str, operator_id: str) -> None:
    await conn.execute(_PIN, {"line_id": line_id, "key": key, "op_id": operator_id})


async def unpin(conn: AsyncConnection, line_id: str, key: str, operator_id: str) -> None:
    await conn.execute(_UNPIN, {"line_id": line_id, "key": key, "op_id": operator_id})


async def pinned_to(conn: AsyncConnection, line_id: str, key: str) -> str | None:
    """The operator the conversation is pinned to on the line, if any."""
    found = await conn.execute(_PINNED_TO, {"line_id": line_id, "key": key})
    return found.scalar_one_or_none()


# -- dialog clocks (the timers' facts) --------------------------------------------------------

_LOAD_CLOCK = (
    select(dialog_clocks)
    .where(dialog_clocks.c.dialog_id == bindparam("dialog_id"))
    .with_for_update()
)
_save_clock = insert(dialog_clocks).values(
    {c.name: bindparam(f"v_{c.name}") for c in dialog_clocks.columns}
)
_SAVE_CLOCK = _save_clock.on_conflict_do_update(
    index_elements=[dialog_clocks.c.dialog_id],
    set_={c.name: _save_clock.excluded[c.name] for c in dialog_clocks.columns if not c.primary_key},
)


async def load_clock(conn: AsyncConnection, dialog_id: UUID) -> DialogClock | None:
    """The dialog's clock, locked until commit."""
    row = (await conn.execute(_LOAD_CLOCK, {"dialog_id": dialog_id})).first()
    if row is None:
        return None
    values = dict(row._mapping)
    marker = values.pop("sla_reached")
    return DialogClock(**values, sla_reached=SlaMarker(marker) if marker else None)


async def save_clock(conn: AsyncConnection, clock: DialogClock) -> None:
    values = {f"v_{k}": v for k, v in asdict(clock).items()}
    values["v_sla_reached"] = clock.sla_reached.value if clock.sla_reached else None
    await conn.execute(_SAVE_CLOCK, values)
