"""Assignment end to end on the real broker: round robin, the queue, capacity, confirmation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from openlines.events.catalog import (
    AssignDialog,
    AssignedBy,
    DialogQueued,
    DialogReopened,
    DialogTransferred,
    OperatorPresenceChanged,
)
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.waiting import wait_handled
from openlines.routing.app import CONSUMER
from openlines.routing.settings import RoutingSettings

from .routing_support import (
    Routing,
    assigned,
    closed,
    lines_config,
    new_id,
    now,
    opened,
    routing_running,
    routing_settings,
)


async def test_opened_dialog_is_offered_to_the_online_operator(routing: Routing) -> None:
    status, body = await routing.presence("ann", "online")
    assert (status, body["status"]) == (200, "online")
    dialog = new_id()
    first = await routing.dialogs.publish(opened(dialog))

    [command] = await routing.commands.commands(1)
    assert command == AssignDialog(
        dialog_id=dialog, operator_id="ann", line_id="demo", strategy="round_robin"
    )
    envelope = routing.commands.seen[0]
    assert envelope.stream_id == str(dialog) and envelope.stream_version == 0
    assert envelope.causation_id == first.event_id and envelope.producer == "routing"

    await routing.routing_events.wait_for(
        lambda r: bool(r.of(DialogQueued)) and bool(r.of(OperatorPresenceChanged)),
        "DialogQueued and OperatorPresenceChanged",
    )
    [queued] = routing.routing_events.of(DialogQueued)
    assert (queued.dialog_id, queued.line_id, queued.position, queued.reason) == (
        dialog,
        "demo",
        1,
        "new",
    )
    # The same dialog announced again (another event id) is not offered twice.
    await routing.dialogs.publish(opened(dialog))
    second = new_id()
    await routing.dialogs.publish(opened(second))
    commands = await routing.commands.commands(2)
    assert [c.dialog_id for c in commands] == [dialog, second]
    assert await routing.load() == {
        "ann": (0, 2, 2),
        "bob": (0, 0, 2),
        "carl": (0, 0, 1),
        "sue": (0, 0, 5),
    }


async def test_round_robin_alternates_between_online_operators(routing: Routing) -> None:
    await routing.presence("ann", "online")
    await routing.presence("bob", "online")
    picked = []
    for n in range(4):
        dialog = new_id()
        await routing.dialogs.publish(opened(dialog))
        command = (await routing.commands.commands(n + 1))[n]
        assert command.dialog_id == dialog
        picked.append(command.operator_id)
        await routing.dialogs.publish(assigned(dialog, command.operator_id))
    assert picked[0] != picked[1]
    assert picked == [picked[0], picked[1], picked[0], picked[1]]
    assert sorted(picked) == ["ann", "ann", "bob", "bob"]


async def test_nobody_online_queues_until_an_operator_comes_online(routing: Routing) -> None:
    dialog = new_id()
    await routing.dialogs.publish(opened(dialog), occurred_at=now() - timedelta(seconds=7))
    entry = await routing.wait_queue(1)
    assert entry["oldest_waiting_since"] is not None
    assert entry["oldest_wait_seconds"] >= 7
    assert routing.commands.of(AssignDialog) == []  # same transaction as the queue row

    status, _ = await routing.presence("ann", "online")
    assert status == 200
    [command] = await routing.commands.commands(1)
    assert (command.dialog_id, command.operator_id) == (dialog, "ann")
    entry = await routing.wait_queue(0)
    assert (entry["oldest_waiting_since"], entry["oldest_wait_seconds"]) == (None, 0)


async def test_closed_while_waiting_leaves_the_queue(routing: Routing) -> None:
    gone, stays = new_id(), new_id()
    await routing.dialogs.publish(opened(gone))
    await routing.dialogs.publish(opened(stays))
    await routing.wait_queue(2)
    await routing.dialogs.publish(closed(gone, None))
    await routing.wait_queue(1)
    await routing.presence("ann", "online")
    [command] = await routing.commands.commands(1)
    assert command.dialog_id == stays
    await routing.wait_queue(0)
    assert len(routing.commands.of(AssignDialog)) == 1


async def test_capacity_then_the_oldest_waiting_dialog_goes_to_the_freed_operator(
    routing: Routing,
) -> None:
    await routing.presence("ann", "online")
    first, second = new_id(), new_id()
    for dialog in (first, second):
        await routing.dialogs.publish(opened(dialog))
    offered = await routing.commands.commands(2)
    # Two dialogs are two keys, maybe two partitions: no order between them is promised.
    assert {(c.dialog_id, c.operator_id) for c in offered} == {(first, "ann"), (second, "ann")}
    for dialog in (first, second):
        await routing.dialogs.publish(assigned(dialog, "ann"))

    older, newer = new_id(), new_id()
    # Published newest first: the queue is FIFO by waiting time, not by arrival at routing.
    await routing.dialogs.publish(opened(newer), occurred_at=now() - timedelta(seconds=5))
    await routing.dialogs.publish(opened(older), occurred_at=now() - timedelta(seconds=10))
    await routing.wait_queue(2)
    assert len(routing.commands.of(AssignDialog)) == 2  # ann is full, bob is offline

    await routing.dialogs.publish(closed(first, "ann"))
    third = (await routing.commands.commands(3))[2]
    assert (third.dialog_id, third.operator_id) == (older, "ann")
    await routing.wait_queue(1)
    assert (await routing.load())["ann"] == (1, 1, 2)

    await routing.dialogs.publish(assigned(older, "ann"))
    await routing.dialogs.publish(closed(second, "ann"))
    fourth = (await routing.commands.commands(4))[3]
    assert (fourth.dialog_id, fourth.operator_id) == (newer, "ann")
    await routing.wait_queue(0)


async def _offered_to(routing: Routing, operator: str) -> UUID:
    """`operator` alone comes online and a new dialog is offered to them."""
    await routing.presence(operator, "online")
    dialog = new_id()
    await routing.dialogs.publish(opened(dialog))
    [command] = await routing.commands.commands(1)
    assert command.operator_id == operator
    return dialog


async def test_operator_taking_a_dialog_releases_the_reservation_of_another(
    routing: Routing,
) -> None:
    dialog = await _offered_to(routing, "ann")
    # bob replied first (dialogs records him; it will ignore the AssignDialog to ann).
    await routing.dialogs.publish(assigned(dialog, "bob", by=AssignedBy.OPERATOR))
    await routing.wait_load("bob", (1, 0, 2))
    assert (await routing.load())["ann"] == (0, 0, 2)

    # ann's freed capacity is used at once; bob's manual dialog counts against his.
    waiting = new_id()
    await routing.dialogs.publish(opened(waiting))
    second = (await routing.commands.commands(2))[1]
    assert (second.dialog_id, second.operator_id) == (waiting, "ann")


async def test_accept_and_close_of_an_offered_dialog_leaves_nobody_a_unit(
    routing: Routing,
) -> None:
    # dialogs records an operator's close of an unassigned dialog as DialogAssigned(by
    # operator) then DialogClosed, in one append: here ann closes a dialog offered to bob.
    dialog = await _offered_to(routing, "bob")
    await routing.dialogs.publish(assigned(dialog, "ann", by=AssignedBy.OPERATOR))
    await routing.dialogs.publish(closed(dialog, "ann"))
    await routing.wait_load("bob", (0, 0, 2))
    await routing.wait_load("ann", (0, 0, 2))

    # Both have their full capacity: two new dialogs each are offered at once (4 in all).
    await routing.presence("ann", "online")
    fresh = [new_id() for _ in range(4)]
    for new in fresh:
        await routing.dialogs.publish(opened(new))
    offers = (await routing.commands.commands(5))[1:]
    assert sorted(c.operator_id for c in offers) == ["ann", "ann", "bob", "bob"]
    await routing.wait_queue(0)


async def test_unconfirmed_reservation_is_released_and_offered_again(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> None:
    settings = routing_settings(
        kafka_bootstrap, database_url, db_schema, lines_file, reservation_timeout_seconds=0.5
    )
    async with routing_running(settings) as routing:
        await routing.presence("ann", "online")
        dialog = new_id()
        await routing.dialogs.publish(opened(dialog))
        # Nobody confirms: the durable timer re-queues it and routing offers it again.
        first, again = await routing.commands.commands(2)
        assert first.dialog_id == again.dialog_id == dialog
        await routing.routing_events.wait_for(
            lambda r: any(q.reason == "reservation_expired" for q in r.of(DialogQueued)),
            "DialogQueued(reservation_expired)",
        )
        await routing.dialogs.publish(assigned(dialog, "ann"))
        await routing.wait_load("ann", (1, 0, 2))


async def test_transfer_and_reopen_move_the_load(routing: Routing) -> None:
    await routing.presence("ann", "online")
    dialog = new_id()
    await routing.dialogs.publish(opened(dialog))
    await routing.commands.commands(1)
    await routing.dialogs.publish(assigned(dialog, "ann"))
    # As dialogs records a transfer to an operator: the transfer, then the assignment.
    await routing.dialogs.publish(
        DialogTransferred(
            dialog_id=dialog, from_operator_id="ann", to_operator_id="bob", actor_id="sue"
        )
    )
    settled = await routing.dialogs.publish(assigned(dialog, "bob", AssignedBy.SUPERVISOR))
    # The assignment's consumer, not the timers' (which also records every dialog event).
    await wait_handled(routing.runtime.engine, settled.event_id, consumer=CONSUMER)
    loads = await routing.load()
    assert (loads["ann"], loads["bob"]) == ((0, 0, 2), (1, 0, 2))  # one unit moved, once

    await routing.dialogs.publish(closed(dialog, "bob"))
    await routing.wait_load("bob", (0, 0, 2))
    await routing.dialogs.publish(
        DialogReopened(dialog_id=dialog, actor_id="ann", operator_id="ann")
    )
    await routing.wait_load("ann", (1, 0, 2))

    # To another line without an operator: it waits in that line's queue, and carl gets it.
    await routing.dialogs.publish(
        DialogTransferred(
            dialog_id=dialog, from_operator_id="ann", to_line_id="vip", actor_id="sue"
        )
    )
    await routing.wait_queue(1, "vip")
    await routing.wait_load("ann", (0, 0, 2))
    await routing.presence("carl", "online")
    second = (await routing.commands.commands(2))[1]
    assert (second.dialog_id, second.operator_id, second.line_id) == (dialog, "carl", "vip")


def _settings_with(
    config: dict[str, Any],
    tmp_path: Path,
    kafka_bootstrap: str,
    database_url: str,
    db_schema: str,
    **overrides: Any,
) -> RoutingSettings:
    """Settings for a test with its own lines file."""
    lines_file = write_lines(tmp_path, config)
    return routing_settings(kafka_bootstrap, database_url, db_schema, lines_file, **overrides)


ONE_EACH = lines_config({"ann": 1, "bob": 1}, {"demo": ["ann", "bob"]})


async def test_an_expired_offer_applied_late_never_overfills_its_operator(
    kafka_bootstrap: str, database_url: str, db_schema: str, tmp_path: Path
) -> None:
    # dialogs lags past the reservation timeout; the AssignDialog routing sent before the
    # expiry is still applied afterwards. Its operator must have kept room for it.
    settings = _settings_with(
        ONE_EACH,
        tmp_path,
        kafka_bootstrap,
        database_url,
        db_schema,
        reservation_timeout_seconds=1.0,
    )
    async with routing_running(settings) as routing:
        await routing.presence("ann", "online")
        await routing.presence("bob", "online")
        x, y, z = new_id(), new_id(), new_id()
        await routing.dialogs.publish(opened(x))
        (to_ann,) = await routing.commands.commands(1)
        assert (to_ann.dialog_id, to_ann.operator_id) == (x, "ann")
        await routing.dialogs.publish(opened(y))
        to_bob = (await routing.commands.commands(2))[1]
        assert (to_bob.dialog_id, to_bob.operator_id) == (y, "bob")
        await routing.dialogs.publish(assigned(y, "bob"))
        await routing.wait_load("bob", (1, 0, 1))
        await routing.presence("ann", "away")

        # X's offer to ann expires unanswered: X waits again, ann's unit stays taken.
        await routing.routing_events.wait_for(
            lambda r: any(q.reason == "reservation_expired" for q in r.of(DialogQueued)),
            "DialogQueued(reservation_expired)",
        )
        assert (await routing.load())["ann"] == (0, 1, 1)
        await routing.dialogs.publish(opened(z))
        await routing.wait_queue(2)
        await routing.dialogs.publish(closed(y, "bob"))
        third = (await routing.commands.commands(3))[2]
        assert (third.dialog_id, third.operator_id) == (x, "bob")
        await routing.presence("ann", "online")  # no room: Z keeps waiting
        await routing.wait_queue(1)
        assert (await routing.load())["ann"] == (0, 1, 1)

        # dialogs finally applies the first AssignDialog: X is ann's, within her one dialog;
        # bob's offer of X is void, so Z goes to him.
        await routing.dialogs.publish(assigned(x, "ann"))
        await routing.wait_load("ann", (1, 0, 1))
        fourth = (await routing.commands.commands(4))[3]
        assert (fourth.dialog_id, fourth.operator_id) == (z, "bob")
        await routing.wait_load("bob", (0, 1, 1))


SHARED = lines_config({"ann": 3, "carl": 1}, {"demo": ["ann"], "vip": ["ann", "carl"]})


async def test_an_operator_of_several_lines_gets_the_oldest_dialogs_among_them(
    kafka_bootstrap: str, database_url: str, db_schema: str, tmp_path: Path
) -> None:
    settings = _settings_with(SHARED, tmp_path, kafka_bootstrap, database_url, db_schema)
    async with routing_running(settings) as routing:
        a, b, c, d = new_id(), new_id(), new_id(), new_id()
        for dialog, line in ((a, "vip"), (b, "demo"), (c, "vip"), (d, "vip")):
            await routing.dialogs.publish(opened(dialog, line))  # oldest first
        await routing.wait_queue(3, "vip")
        await routing.wait_queue(1, "demo")
        await routing.presence("ann", "online")  # three free places at once
        # Commands are keyed by dialog: partitions interleave, so compare as a set.
        offered = {command.dialog_id for command in await routing.commands.commands(3)}
        assert offered == {a, b, c}  # not a, c and d: b waited longer than c and d
        await routing.wait_queue(1, "vip")
