"""The pure routing core: strategies, slot transitions and the load they move, access rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from openlines.events.catalog import PresenceStatus
from openlines.routing import domain
from openlines.routing.domain import Candidate, DialogSlot, LoadChange, SlotStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = uuid.UUID(int=1)
ONLINE, AWAY, OFFLINE = PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.OFFLINE


def op(
    operator_id: str,
    status: PresenceStatus = ONLINE,
    active: int = 0,
    reserved: int = 0,
    max_dialogs: int = 2,
    last: int | None = None,
) -> Candidate:
    at = T0 + timedelta(seconds=last) if last is not None else None
    return Candidate(operator_id, status, active, reserved, max_dialogs, at)


# -- strategies ---------------------------------------------------------------------------------


def test_round_robin_picks_the_operator_assigned_longest_ago() -> None:
    assert domain.pick_operator("round_robin", [op("ann", last=10), op("bob", last=5)]) == "bob"
    assert domain.pick_operator("round_robin", [op("ann", last=1), op("bob", last=5)]) == "ann"


def test_round_robin_prefers_operators_never_assigned_then_orders_by_id() -> None:
    assert domain.pick_operator("round_robin", [op("ann", last=0), op("bob")]) == "bob"
    assert domain.pick_operator("round_robin", [op("bob"), op("ann")]) == "ann"


def test_round_robin_rotates_when_the_pick_is_recorded() -> None:
    pool = {"ann": op("ann", max_dialogs=9), "bob": op("bob", max_dialogs=9)}
    order = []
    for n in range(4):
        chosen = domain.pick_operator("round_robin", pool.values())
        assert chosen is not None
        order.append(chosen)
        c = pool[chosen]
        pool[chosen] = Candidate(
            chosen, c.status, c.active, c.reserved + 1, c.max_dialogs, T0 + timedelta(seconds=n)
        )
    assert order == ["ann", "bob", "ann", "bob"]


@pytest.mark.parametrize(
    "unavailable",
    [
        op("ann", status=AWAY, last=0),
        op("ann", status=OFFLINE, last=0),
        op("ann", active=2, last=0),
        op("ann", active=1, reserved=1, last=0),
        op("ann", reserved=2, last=0),
    ],
)
def test_only_online_operators_with_room_are_eligible(unavailable: Candidate) -> None:
    assert domain.pick_operator("round_robin", [unavailable, op("bob", last=99)]) == "bob"
    assert domain.pick_operator("round_robin", [unavailable]) is None


def test_manual_pool_never_picks_and_nobody_means_none() -> None:
    assert domain.pick_operator("manual", [op("ann")]) is None
    assert domain.pick_operator("round_robin", []) is None


def test_least_loaded_picks_the_lowest_relative_load() -> None:
    busy = op("ann", active=1, max_dialogs=2, last=0)
    idle = op("bob", active=1, max_dialogs=4, last=50)
    assert domain.pick_operator("least_loaded", [busy, idle]) == "bob"
    assert domain.pick_operator("round_robin", [busy, idle]) == "ann"


# -- transitions and load -------------------------------------------------------------------------


def slot(status: SlotStatus, operator_id: str | None = None, line: str = "demo") -> DialogSlot:
    return DialogSlot(D, line, status, operator_id)


def test_opened_queues_once() -> None:
    assert domain.opened(None, D, "demo") == slot(SlotStatus.QUEUED)
    assert domain.opened(slot(SlotStatus.QUEUED), D, "demo") is None
    assert domain.opened(slot(SlotStatus.ACTIVE, "ann"), D, "demo") is None


def test_confirming_a_reservation_turns_reserved_into_active() -> None:
    before = slot(SlotStatus.RESERVED, "ann")
    after = domain.assigned(before, D, "demo", "ann")
    assert after == slot(SlotStatus.ACTIVE, "ann")
    assert domain.load_delta(before, after) == {"ann": LoadChange(active=1, reserved=-1)}
    assert domain.freed_operators(domain.load_delta(before, after)) == []


def test_someone_else_taking_it_releases_the_reservation() -> None:
    before = slot(SlotStatus.RESERVED, "ann")
    after = domain.assigned(before, D, "demo", "bob")
    delta = domain.load_delta(before, after)
    assert delta == {"ann": LoadChange(reserved=-1), "bob": LoadChange(active=1)}
    assert domain.freed_operators(delta) == ["ann"]


def test_taking_a_waiting_dialog_and_taking_over_an_active_one() -> None:
    taken = domain.assigned(slot(SlotStatus.QUEUED), D, "demo", "bob")
    assert domain.load_delta(slot(SlotStatus.QUEUED), taken) == {"bob": LoadChange(active=1)}
    over = domain.assigned(taken, D, "demo", "ann")
    assert domain.load_delta(taken, over) == {
        "bob": LoadChange(active=-1),
        "ann": LoadChange(active=1),
    }
    # A dialog routing never saw (e.g. opened before routing existed) still counts.
    assert domain.assigned(None, D, "demo", "ann") == slot(SlotStatus.ACTIVE, "ann")


def test_assigning_a_closed_dialog_does_not_reopen_or_count_it() -> None:
    before = slot(SlotStatus.CLOSED, "ann")
    after = domain.assigned(before, D, "demo", "bob")
    assert after == slot(SlotStatus.CLOSED, "bob")
    assert domain.load_delta(before, after) == {}


@pytest.mark.parametrize(
    ("before", "freed"),
    [
        (slot(SlotStatus.ACTIVE, "ann"), {"ann": LoadChange(active=-1)}),
        (slot(SlotStatus.RESERVED, "ann"), {"ann": LoadChange(reserved=-1)}),
        (slot(SlotStatus.QUEUED), {}),
        (slot(SlotStatus.CLOSED, "ann"), {}),
        (None, {}),
    ],
)
def test_closing_frees_whatever_the_dialog_held(
    before: DialogSlot | None, freed: dict[str, LoadChange]
) -> None:
    after = domain.closed(before, D, "demo")
    assert after.status is SlotStatus.CLOSED
    assert domain.load_delta(before, after) == freed


def test_reopening_counts_the_dialog_again() -> None:
    before = slot(SlotStatus.CLOSED, "ann")
    after = domain.reopened(before, D, None, "bob")
    assert after == slot(SlotStatus.ACTIVE, "bob")
    assert domain.load_delta(before, after) == {"bob": LoadChange(active=1)}


def test_transfer_moves_load_or_requeues_on_the_new_line() -> None:
    active = slot(SlotStatus.ACTIVE, "ann")
    to_bob = domain.transferred(active, D, "bob", None)
    assert to_bob == slot(SlotStatus.ACTIVE, "bob")
    assert domain.load_delta(active, to_bob) == {
        "ann": LoadChange(active=-1),
        "bob": LoadChange(active=1),
    }
    to_line = domain.transferred(active, D, None, "vip")
    assert to_line == slot(SlotStatus.QUEUED, line="vip")
    assert domain.freed_operators(domain.load_delta(active, to_line)) == ["ann"]
    closed = slot(SlotStatus.CLOSED, "ann")
    assert domain.transferred(closed, D, "bob", None) == slot(SlotStatus.CLOSED, "bob")
    assert domain.transferred(None, D, "bob", None) is None


@pytest.mark.parametrize("before", [SlotStatus.ACTIVE, SlotStatus.RESERVED, SlotStatus.CLOSED])
def test_a_transfer_as_dialogs_records_it_moves_exactly_one_unit(before: SlotStatus) -> None:
    """dialogs records a transfer to an operator as DialogTransferred then DialogAssigned: the
    two together free the previous holder's unit and take one for the target, once; a closed
    dialog (not counted by max_dialogs) moves none."""
    start = slot(before, "ann")
    moved = domain.transferred(start, D, "bob", None)
    assert moved is not None
    settled = domain.assigned(moved, D, "demo", "bob")
    assert settled == moved
    total: dict[str, LoadChange] = domain.load_delta(start, settled)
    if before is SlotStatus.CLOSED:
        assert (settled.status, settled.operator_id, total) == (SlotStatus.CLOSED, "bob", {})
    else:
        freed = LoadChange(active=-1) if before is SlotStatus.ACTIVE else LoadChange(reserved=-1)
        assert total == {"ann": freed, "bob": LoadChange(active=1)}


def test_only_a_live_reservation_of_that_operator_expires() -> None:
    reserved = slot(SlotStatus.RESERVED, "ann")
    assert domain.reservation_expired(reserved, "ann") == slot(SlotStatus.QUEUED)
    assert domain.reservation_expired(reserved, "bob") is None
    assert domain.reservation_expired(slot(SlotStatus.ACTIVE, "ann"), "ann") is None
    assert domain.reservation_expired(None, "ann") is None


# -- presentation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("online", ONLINE), ("away", AWAY), ("offline", OFFLINE), ("ONLINE", None), (1, None)],
)
def test_parse_presence(value: object, parsed: PresenceStatus | None) -> None:
    assert domain.parse_presence(value) == parsed


def test_wait_seconds() -> None:
    assert domain.wait_seconds(None, T0) == 0
    assert domain.wait_seconds(T0, T0 + timedelta(seconds=61.9)) == 61
    assert domain.wait_seconds(T0 + timedelta(seconds=5), T0) == 0  # clock skew
