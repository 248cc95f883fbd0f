"""SLA markers, auto-close and re-route on no answer, on the real broker and Postgres.

Time travels: the routing service runs on a `TravelClock`, the tests date the dialog events
they publish by it and move it past a threshold, and the timer worker fires what is then due.
Nothing sleeps for the minutes the thresholds name. The tests play the dialogs service: they
publish its events and read the commands routing sends back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from openlines.events.catalog import (
    AssignDialog,
    CloseDialog,
    CloseReason,
    DialogTransferred,
    Direction,
    ReturnToQueue,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.testing import factories
from openlines.kit.testing import lines
from openlines.kit.testing.clock import TravelClock
from openlines.kit.testing.waiting import eventually

from .routing_support import (
    LINES,
    Routing,
    assigned,
    closed,
    new_id,
    opened,
    routing_running,
    routing_settings,
)

TIMED = {
    **LINES,
    "lines": [
        {
            **line,
            "sla": {"warning_seconds": 30, "breach_seconds": 60},
            "auto_close": {"inactive_seconds": 300, "unassigned_seconds": 600},
            "reroute_after_seconds": 90,
        }
        for line in LINES["lines"]
    ],
}


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    return lines.write_lines(tmp_path, TIMED)


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock()


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path) -> Any:
    return lambda: routing_settings(kafka_bootstrap, database_url, db_schema, lines_file)


@pytest.fixture
async def timed(settings: Any, clock: TravelClock) -> AsyncIterator[Routing]:
    async with routing_running(settings(), clock) as harness:
        yield harness


class Dialog:
    """One dialog's events, published as dialogs would, dated by the travel clock."""

    def __init__(self, routing: Routing, clock: TravelClock, line_id: str = "demo") -> None:
        self.routing, self.clock, self.line_id = routing, clock, line_id
        self.id = new_id()
        self.version = 0

    async def publish(self, payload: Any) -> None:
        await self.routing.dialogs.publish(payload, occurred_at=self.clock.now())
        self.version += 1

    async def open(self) -> Dialog:
        await self.publish(opened(self.id, self.line_id))
        return self

    async def says(self) -> None:
        channel = f"tg-{self.line_id}"
        await self.publish(
            factories.message_appended(self.id, channel_id=channel, sent_at=self.clock.now())
        )

    async def answers(self, operator_id: str) -> None:
        reply = factories.message_appended(
            self.id,
            direction=Direction.OUT,
            author_id=operator_id,
            channel_id=f"tg-{self.line_id}",
            sent_at=self.clock.now(),
        )
        await self.publish(reply)

    async def assigned(self, operator_id: str) -> None:
        await self.publish(assigned(self.id, operator_id, line_id=self.line_id))

    async def settled(self, routing: Routing | None = None) -> None:
        """Routing's timers know every event published so far (its clock row's version)."""
        engine = (routing or self.routing).runtime.engine

        async def caught_up() -> bool:
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT version FROM dialog_clocks WHERE dialog_id = :id"),
                    {"id": self.id},
                )
                return found.scalar_one_or_none() == self.version

        await eventually(caught_up, what=f"routing's clock of {self.id} at v{self.version}")


def markers(routing: Routing, kind: type, dialog_id: uuid.UUID) -> list[Any]:
    return [e for e in routing.routing_events.of(kind) if e.dialog_id == dialog_id]


def commands(routing: Routing, kind: type, dialog_id: uuid.UUID) -> list[Any]:
    return [c for c in routing.commands.of(kind) if c.dialog_id == dialog_id]


async def wait_for(routing: Routing, reader: str, kind: type, dialog_id: uuid.UUID) -> Any:
    found = getattr(routing, reader)
    await found.wait_for(
        lambda r: any(e.dialog_id == dialog_id for e in r.of(kind)), f"{kind.__name__}"
    )
    return next(e for e in found.of(kind) if e.dialog_id == dialog_id)


async def test_sla_counts_from_the_last_customer_message_and_survives_reassignment(
    timed: Routing, clock: TravelClock
) -> None:
    start = clock.now()
    waiting = await Dialog(timed, clock).open()
    await waiting.says()
    clock.advance(20)
    await waiting.says()  # the count restarts here: warning at +50, breach at +80
    await waiting.assigned("ann")
    answered = await Dialog(timed, clock).open()
    await answered.says()
    await answered.answers("ann")  # an operator's reply clears the count
    await waiting.settled()
    await answered.settled()

    clock.advance(25)  # 45 s after the first message, 25 s after the last: no warning yet
    await waiting.assigned("bob")  # reassignment does not reset the count
    await waiting.settled()
    clock.advance(5)
    warning = await wait_for(timed, "routing_events", SlaWarningReached, waiting.id)
    clock.advance(30)
    breach = await wait_for(timed, "routing_events", SlaBreached, waiting.id)

    last_message = start + timedelta(seconds=20)
    assert warning.waiting_since == breach.waiting_since == last_message
    assert (warning.threshold_seconds, breach.threshold_seconds) == (30, 60)
    assert warning.operator_id == breach.operator_id == "bob"
    assert warning.line_id == "demo"
    # Once each; none for the answered dialog (its markers would have come first).
    assert len(markers(timed, SlaWarningReached, waiting.id)) == 1
    assert len(markers(timed, SlaBreached, waiting.id)) == 1
    assert markers(timed, SlaWarningReached, answered.id) == []


async def test_auto_close_assigned_after_inactivity_unassigned_later_and_capacity_freed(
    timed: Routing, clock: TravelClock
) -> None:
    status, _ = await timed.presence("ann", "online")
    assert status == 200
    busy = await Dialog(timed, clock).open()
    offer = (await timed.commands.commands(1))[0]
    assert offer.operator_id == "ann"
    await busy.assigned("ann")
    await busy.says()
    await timed.wait_load("ann", (1, 0, 2))
    idle = await Dialog(timed, clock, line_id="vip").open()  # carl is offline: it waits
    await idle.says()
    await busy.settled()
    await idle.settled()

    clock.advance(300)
    close = await wait_for(timed, "commands", CloseDialog, busy.id)
    assert (close.reason, close.expected_version) == (CloseReason.AUTO_INACTIVE, busy.version)
    assert commands(timed, CloseDialog, idle.id) == []  # 600 s for an unassigned one
    clock.advance(300)
    close = await wait_for(timed, "commands", CloseDialog, idle.id)
    assert (close.reason, close.expected_version) == (CloseReason.AUTO_UNASSIGNED, idle.version)

    # dialogs records the close: ann's capacity is free again.
    await busy.publish(
        factories.dialog_closed(busy.id, "ann", line_id="demo", reason=CloseReason.AUTO_INACTIVE)
    )
    await timed.wait_load("ann", (0, 0, 2))


async def test_a_timer_moves_with_the_dialog_and_carries_its_latest_version(
    timed: Routing, clock: TravelClock
) -> None:
    dialog = await Dialog(timed, clock).open()
    await dialog.assigned("ann")
    await dialog.says()
    await dialog.settled()
    clock.advance(200)
    await dialog.answers("ann")  # activity: the close moves to 300 s from here
    await dialog.publish(factories.participant_joined(dialog.id, "bob", "bob"))  # no activity
    await dialog.settled()

    clock.advance(150)  # past the first close time, before the second
    clock.advance(150)
    close = await wait_for(timed, "commands", CloseDialog, dialog.id)
    # One close, decided on the latest version (the join moved the version, not the time).
    assert len(commands(timed, CloseDialog, dialog.id)) == 1
    assert close.expected_version == dialog.version
    assert commands(timed, ReturnToQueue, dialog.id) == []  # answered: no re-route

    # Closed: every timer of the dialog is gone.
    await dialog.publish(closed(dialog.id, "ann"))
    await dialog.settled()
    async with timed.runtime.engine.connect() as conn:
        left = await conn.execute(
            text("SELECT name FROM timers WHERE key = :key"), {"key": str(dialog.id)}
        )
        assert left.all() == []


async def test_no_answer_reroutes_to_another_operator(timed: Routing, clock: TravelClock) -> None:
    for op in ("ann", "bob"):
        assert (await timed.presence(op, "online"))[0] == 200
    first = await Dialog(timed, clock).open()
    holder = (await timed.commands.commands(1))[0].operator_id
    await first.assigned(holder)
    second = await Dialog(timed, clock).open()
    other = (await timed.commands.commands(2))[1].operator_id
    await second.assigned(other)
    assert {holder, other} == {"ann", "bob"}
    await first.says()
    await first.settled()

    clock.advance(90)
    back = await wait_for(timed, "commands", ReturnToQueue, first.id)
    assert (back.reason, back.operator_id, back.expected_version) == (
        "no_answer",
        holder,
        first.version,
    )
    # dialogs returns it to the queue: it goes to the other operator, although the holder now
    # has the fewer dialogs and was assigned longest ago (the rotation's pick otherwise).
    await first.publish(returned_for_no_answer(first.id, holder))
    reassigned = (await timed.commands.commands(3))[2]
    assert isinstance(reassigned, AssignDialog)
    assert (reassigned.dialog_id, reassigned.operator_id) == (first.id, other)


def returned_for_no_answer(dialog_id: uuid.UUID, from_operator: str) -> DialogTransferred:
    """What dialogs records for the ReturnToQueue of a re-route."""
    return DialogTransferred(
        dialog_id=dialog_id,
        from_operator_id=from_operator,
        to_line_id="demo",
        from_line_id="demo",
        reason="no_answer",
        actor_id="routing",
    )


async def test_markers_fire_once_with_two_routing_workers(
    settings: Any, clock: TravelClock
) -> None:
    async with (
        routing_running(settings(), clock) as one,
        routing_running(settings(), clock),
    ):
        dialog = await Dialog(one, clock).open()
        await dialog.says()
        await dialog.settled()
        clock.advance(60)  # both markers due at once, two workers claiming
        await wait_for(one, "routing_events", SlaBreached, dialog.id)
        # The warning comes first on the dialog's key: once the breach is read, all are.
        assert len(markers(one, SlaWarningReached, dialog.id)) == 1
        assert len(markers(one, SlaBreached, dialog.id)) == 1


async def test_a_timer_armed_before_a_restart_fires_after_it(
    settings: Any, clock: TravelClock
) -> None:
    async with routing_running(settings(), clock) as before:
        dialog = await Dialog(before, clock).open()
        await dialog.says()
        await dialog.settled()
    clock.advance(30)  # due while no routing runs
    async with routing_running(settings(), clock) as after:
        warning = await wait_for(after, "routing_events", SlaWarningReached, dialog.id)
        assert warning.threshold_seconds == 30
        assert len(markers(after, SlaWarningReached, dialog.id)) == 1


async def test_a_reroute_goes_back_to_the_same_operator_only_when_nobody_else_has_room(
    timed: Routing, clock: TravelClock
) -> None:
    assert (await timed.presence("ann", "online"))[0] == 200  # bob is offline
    dialog = await Dialog(timed, clock).open()
    assert (await timed.commands.commands(1))[0].operator_id == "ann"
    await dialog.assigned("ann")
    await dialog.says()
    await dialog.settled()
    clock.advance(90)
    await wait_for(timed, "commands", ReturnToQueue, dialog.id)
    await dialog.publish(returned_for_no_answer(dialog.id, "ann"))
    again = (await timed.commands.commands(2))[1]
    assert (again.dialog_id, again.operator_id) == (dialog.id, "ann")
