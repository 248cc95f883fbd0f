"""The dialogs' timers: SLA markers, auto-close and re-route on no answer (DESIGN §5, §9).

Its own consumer of the dialogs topic follows every event of every dialog (`clocks.observe`)
and re-arms the dialog's kit timers from the result (`clocks.plan`). When a timer fires, the
SLA markers are emitted on the routing topic, and the close and re-route decisions are sent to
dialogs as commands carrying the stream version they were decided on: dialogs records nothing
if the dialog has changed since, so an outdated timer never closes or moves a dialog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import (
    CloseDialog,
    CloseReason,
    ReturnToQueue,
    SlaBreached,
    SlaMetric,
    SlaWarningReached,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.lines import LinesConfig
from openlines.events.topics import DIALOG_COMMANDS, ROUTING
from openlines.kit import timers
from openlines.kit.log import get_logger
from openlines.kit.subscription import Subscription
from openlines.routing import clocks, store
from openlines.routing.clocks import NO_ANSWER, DialogClock, SlaMarker

log = get_logger(__name__)

SLA_WARNING_TIMER = "routing.sla_warning"
SLA_BREACH_TIMER = "routing.sla_breach"
AUTO_CLOSE_TIMER = "routing.auto_close"
REROUTE_TIMER = "routing.reroute"
TIMERS = [SLA_WARNING_TIMER, SLA_BREACH_TIMER, AUTO_CLOSE_TIMER, REROUTE_TIMER]


# The router's outbox writer: (conn, topic, key, payload, cause).
Emit = Callable[[AsyncConnection, str, str, EventPayload, Envelope[Any] | None], Awaitable[None]]
OnTimer = Callable[[str, timers.TimerHandler], None]


class Timekeeper:
    def __init__(self, lines: LinesConfig, emit: Emit) -> None:
        self.lines = lines
        self.emit = emit

    def subscribe(self, sub: Subscription) -> None:
        sub.on_any(self.on_dialog_event)

    def install(self, on_timer: OnTimer) -> None:
        """Register the timer handlers (`runtime.on_timer`)."""
        on_timer(SLA_WARNING_TIMER, self.on_sla_warning)
        on_timer(SLA_BREACH_TIMER, self.on_sla_breach)
        on_timer(AUTO_CLOSE_TIMER, self.on_auto_close)
        on_timer(REROUTE_TIMER, self.on_reroute)

    # -- facts ----------------------------------------------------------------------------

    async def on_dialog_event(self, conn: AsyncConnection, env: Envelope) -> None:
        dialog_id: UUID | None = getattr(env.payload, "dialog_id", None)
        if dialog_id is None:
            return
        key = str(dialog_id)
        await timers.lock_key(conn, TIMERS, key)  # timers before the clock: the worker's order
        before = await store.load_clock(conn, dialog_id)
        after = clocks.observe(before, env.payload, env.stream_version, env.occurred_at)
        if after is None or after == before:
            return
        await store.save_clock(conn, after)
        await self._arm(conn, after)

    async def _arm(self, conn: AsyncConnection, clock: DialogClock) -> None:
        line = self.lines.line(clock.line_id)
        due = clocks.plan(clock, line) if line is not None else clocks.Plan()
        key = str(clock.dialog_id)
        waiting = {"waiting_since": clock.waiting_since.isoformat()} if clock.waiting_since else {}
        decided = {"version": clock.version, "operator_id": clock.assignee_id}
        wanted: list[tuple[str, datetime | None, dict[str, Any]]] = [
            (SLA_WARNING_TIMER, due.sla_warning, waiting),
            (SLA_BREACH_TIMER, due.sla_breach, waiting),
            (AUTO_CLOSE_TIMER, due.auto_close, decided | {"reason": due.close_reason}),
            (REROUTE_TIMER, due.reroute, decided),
        ]
        for name, at, payload in wanted:
            if at is None:
                await timers.cancel(conn, name, key)
            else:
                await timers.schedule(conn, name, key, at, payload)

    # -- timers ---------------------------------------------------------------------------

    async def on_sla_warning(self, conn: AsyncConnection, timer: timers.Timer) -> None:
        await self._sla(conn, timer, SlaMarker.WARNING)

    async def on_sla_breach(self, conn: AsyncConnection, timer: timers.Timer) -> None:
        await self._sla(conn, timer, SlaMarker.BREACH)

    async def _sla(self, conn: AsyncConnection, timer: timers.Timer, marker: SlaMarker) -> None:
        waiting_since = datetime.fromisoformat(timer.payload["waiting_since"])
        clock = await store.load_clock(conn, UUID(timer.key))
        if clock is None or not clocks.sla_due(clock, marker, waiting_since):
            return  # answered, written again or closed since it was armed
        line = self.lines.line(clock.line_id)
        if line is None:
            return
        sla = line.sla_of(clock.channel_id)
        kind = SlaWarningReached if marker is SlaMarker.WARNING else SlaBreached
        threshold = sla.warning_seconds if marker is SlaMarker.WARNING else sla.breach_seconds
        reached = kind(
            dialog_id=clock.dialog_id,
            line_id=clock.line_id,
            operator_id=clock.assignee_id,
            waiting_since=waiting_since,
            threshold_seconds=threshold,
            metric=SlaMetric.RESPONSE,
        )
        await store.save_clock(conn, replace(clock, sla_reached=marker))
        await self.emit(conn, ROUTING, timer.key, reached, None)
        log.info("sla marker reached", dialog_id=timer.key, marker=str(marker))

    async def on_auto_close(self, conn: AsyncConnection, timer: timers.Timer) -> None:
        version = int(timer.payload["version"])
        close = CloseDialog(
            dialog_id=UUID(timer.key),
            reason=CloseReason(timer.payload["reason"]),
            expected_version=version,
        )
        await self.emit(conn, DIALOG_COMMANDS, timer.key, close, None)
        log.info("auto-close sent", dialog_id=timer.key, reason=str(close.reason), version=version)

    async def on_reroute(self, conn: AsyncConnection, timer: timers.Timer) -> None:
        version = int(timer.payload["version"])
        back = ReturnToQueue(
            dialog_id=UUID(timer.key),
            reason=NO_ANSWER,
            operator_id=timer.payload["operator_id"],
            expected_version=version,
        )
        await self.emit(conn, DIALOG_COMMANDS, timer.key, back, None)
        log.info("re-route sent", dialog_id=timer.key, operator_id=back.operator_id)
