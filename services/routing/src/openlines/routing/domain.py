"""Routing decisions, free of I/O.

Routing keeps one `DialogSlot` per dialog: where the dialog stands from routing's point of view.
An operator's load is derived from the slots (a reserved slot counts as `reserved`, an active one
as `active`), so every transition yields the load change to apply, and capacity freed by a
transition is what triggers draining the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from openlines.events.catalog import PresenceStatus


class SlotStatus(StrEnum):
    QUEUED = "queued"
    """Waiting for an operator."""
    RESERVED = "reserved"
    """AssignDialog sent; capacity held until dialogs confirms with DialogAssigned."""
    ACTIVE = "active"
    """Assigned (confirmed)."""
    CLOSED = "closed"


@dataclass(frozen=True)
class DialogSlot:
    dialog_id: UUID
    line_id: str
    status: SlotStatus
    operator_id: str | None = None
    passed_over: str | None = None
    """Who did not answer it in time (re-route): it goes to someone else while others have
    room."""


@dataclass(frozen=True)
class LoadChange:
    active: int = 0
    reserved: int = 0

    @property
    def total(self) -> int:
        return self.active + self.reserved


def _load(slot: DialogSlot | None) -> dict[str, LoadChange]:
    if slot is None or slot.operator_id is None:
        return {}
    if slot.status is SlotStatus.ACTIVE:
        return {slot.operator_id: LoadChange(active=1)}
    if slot.status is SlotStatus.RESERVED:
        return {slot.operator_id: LoadChange(reserved=1)}
    return {}


def load_delta(before: DialogSlot | None, after: DialogSlot | None) -> dict[str, LoadChange]:
    """Per operator, how their counters move when `before` becomes `after` (zeros omitted)."""
    old, new = _load(before), _load(after)
    delta: dict[str, LoadChange] = {}
    for operator_id in old.keys() | new.keys():
        a, b = old.get(operator_id, LoadChange()), new.get(operator_id, LoadChange())
        change = LoadChange(active=b.active - a.active, reserved=b.reserved - a.reserved)
        if change != LoadChange():
            delta[operator_id] = change
    return delta


def with_reserved(
    delta: dict[str, LoadChange], operator_id: str, units: int
) -> dict[str, LoadChange]:
    """`delta` with `units` more reserved for the operator (zeros omitted)."""
    old = delta.get(operator_id, LoadChange())
    change = LoadChange(active=old.active, reserved=old.reserved + units)
    moved = {op: c for op, c in delta.items() if op != operator_id}
    if change != LoadChange():
        moved[operator_id] = change
    return moved


def freed_operators(delta: dict[str, LoadChange]) -> list[str]:
    """Operators whose load went down: they may take a waiting dialog now."""
    return sorted(op for op, change in delta.items() if change.total < 0)


# -- transitions, one per fact routing learns ------------------------------------------------


def opened(current: DialogSlot | None, dialog_id: UUID, line_id: str) -> DialogSlot | None:
    """A new dialog waits in its line's queue; None when routing already knows it."""
    if current is not None:
        return None
    return DialogSlot(dialog_id, line_id, SlotStatus.QUEUED)


def reserved(current: DialogSlot, operator_id: str) -> DialogSlot:
    return replace(current, status=SlotStatus.RESERVED, operator_id=operator_id)


def assigned(
    current: DialogSlot | None, dialog_id: UUID, line_id: str, operator_id: str
) -> DialogSlot:
    """dialogs recorded an assignee: whoever held a reservation loses it, the assignee counts it.

    Reassigning a closed dialog does not reopen it (DESIGN §9), so it stays out of the counts.
    """
    if current is not None and current.status is SlotStatus.CLOSED:
        return replace(current, operator_id=operator_id)
    return DialogSlot(dialog_id, line_id, SlotStatus.ACTIVE, operator_id)


def closed(current: DialogSlot | None, dialog_id: UUID, line_id: str) -> DialogSlot:
    if current is None:
        return DialogSlot(dialog_id, line_id, SlotStatus.CLOSED)
    return replace(current, status=SlotStatus.CLOSED)


def reopened(
    current: DialogSlot | None, dialog_id: UUID, line_id: str | None, operator_id: str
) -> DialogSlot:
    line = line_id or (current.line_id if current is not None else "")
    return DialogSlot(dialog_id, line, SlotStatus.ACTIVE, operator_id)


def transferred(
    current: DialogSlot | None,
    dialog_id: UUID,
    to_operator_id: str | None,
    to_line_id: str | None,
    *,
    passed_over: str | None = None,
) -> DialogSlot | None:
    """To an operator: the load moves. To a line only: the dialog waits in that line's queue
    (`passed_over`: the assignee it was taken from because they did not answer)."""
    if current is None:
        if to_line_id is None:
            return None  # nothing known about the dialog, and no line to queue it in
        current = DialogSlot(dialog_id, to_line_id, SlotStatus.QUEUED)
    line = to_line_id or current.line_id
    if current.status is SlotStatus.CLOSED:
        return replace(current, line_id=line, operator_id=to_operator_id or current.operator_id)
    if to_operator_id is not None:
        return DialogSlot(dialog_id, line, SlotStatus.ACTIVE, to_operator_id)
    return DialogSlot(dialog_id, line, SlotStatus.QUEUED, passed_over=passed_over)


def reservation_expired(current: DialogSlot | None, operator_id: str) -> DialogSlot | None:
    """The operator's reservation was never confirmed: back to the queue (None: stale timer)."""
    if current is None or current.status is not SlotStatus.RESERVED:
        return None
    if current.operator_id != operator_id:
        return None
    return replace(current, status=SlotStatus.QUEUED, operator_id=None)


# -- choosing an operator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    operator_id: str
    status: PresenceStatus
    active: int
    reserved: int
    max_dialogs: int
    last_assigned_at: datetime | None = None

    @property
    def load(self) -> int:
        return self.active + self.reserved

    @property
    def has_room(self) -> bool:
        return self.status is PresenceStatus.ONLINE and self.load < self.max_dialogs


def _rotation_key(c: Candidate) -> tuple[bool, datetime | None, str]:
    # Never assigned first, then the one assigned longest ago; the id makes it deterministic.
    return (c.last_assigned_at is not None, c.last_assigned_at, c.operator_id)


def pick_operator(strategy: str, candidates: Iterable[Candidate]) -> str | None:
    """The operator who should get the next waiting dialog, or None (nobody, or manual pool)."""
    eligible = [c for c in candidates if c.has_room]
    if not eligible or strategy == "manual":
        return None
    if strategy == "least_loaded":
        return min(eligible, key=lambda c: (c.load / c.max_dialogs, *_rotation_key(c))).operator_id
    # round_robin and longest_idle both rotate by the time of the last assignment.
    return min(eligible, key=_rotation_key).operator_id


def parse_presence(value: object) -> PresenceStatus | None:
    if not isinstance(value, str):
        return None
    try:
        return PresenceStatus(value)
    except ValueError:
        return None


def wait_seconds(since: datetime | None, now: datetime) -> int:
    """Whole seconds waited so far (0 when nothing waits)."""
    if since is None:
        return 0
    return max(0, int((now - since).total_seconds()))
