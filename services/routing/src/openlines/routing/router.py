"""The routing use cases: apply what dialogs reports, drain queues, presence, expiries.

Everything runs inside the caller's transaction (consumer batch, timer, HTTP request) and
starts with `store.lock_routing`. Messages leave through the outbox in the same transaction,
so a reservation and its AssignDialog command commit or vanish together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import (
    AssignDialog,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogPinned,
    DialogQueued,
    DialogReopened,
    DialogTransferred,
    OperatorPresenceChanged,
    PresenceStatus,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.lines import Line, LinesConfig
from openlines.events.topics import DIALOG_COMMANDS, ROUTING
from openlines.kit import timers
from openlines.kit.log import get_logger
from openlines.kit.outbox import Outbox
from openlines.kit.subscription import Subscription
from openlines.kit.timers import Clock, wall_clock
from openlines.routing import domain, metrics, store
from openlines.routing.clocks import NO_ANSWER
from openlines.routing.domain import DialogSlot, LoadChange, SlotStatus

log = get_logger(__name__)

RESERVATION_TIMER = "routing.reservation_expired"
# The `strategy` of an offer made to the operator a conversation is pinned to.
PINNED_STRATEGY = "pinned"

# How each DIALOGS event that moves routing's state changes the dialog's slot, and the reason
# a queued slot gets; the other DIALOGS events are skipped without taking the lock.
Transition = Callable[[DialogSlot | None, Any], DialogSlot | None]
TRANSITIONS: dict[type[EventPayload], tuple[Transition, str]] = {
    DialogOpened: (lambda before, e: domain.opened(before, e.dialog_id, e.line_id), "new"),
    DialogAssigned: (
        lambda before, e: domain.assigned(before, e.dialog_id, e.line_id, e.operator_id),
        "new",
    ),
    DialogClosed: (lambda before, e: domain.closed(before, e.dialog_id, e.line_id), "new"),
    DialogReopened: (
        lambda before, e: domain.reopened(before, e.dialog_id, e.line_id, e.operator_id),
        "new",
    ),
    DialogTransferred: (
        lambda before, e: domain.transferred(
            before,
            e.dialog_id,
            e.to_operator_id,
            e.to_line_id,
            passed_over=e.from_operator_id if e.reason == NO_ANSWER else None,
        ),
        "transferred",
    ),
}


class Router:
    def __init__(
        self,
        lines: LinesConfig,
        outbox: Outbox,
        *,
        schema: str,
        producer: str,
        reservation_timeout: timedelta,
        clock: Clock = wall_clock,
    ) -> None:
        self.clock = clock
        self.lines = lines
        self.outbox = outbox
        self.schema = schema
        self.producer = producer
        self.reservation_timeout = reservation_timeout

    # -- facts from dialogs -------------------------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        for kind, (transition, reason) in TRANSITIONS.items():
            sub.on(kind)(partial(self.on_dialog_event, transition, reason))
        sub.on(DialogPinned, when=lambda e: e.line_id is not None and bool(e.conversation_key))(
            self.on_pinned
        )

    async def on_pinned(self, conn: AsyncConnection, env: Envelope[DialogPinned]) -> None:
        """Keep the conversation's pin on its line: its next dialogs there go to the holder
        first (see `_offer_to_pinned`)."""
        event = env.payload
        assert event.line_id is not None and event.conversation_key is not None
        if event.pinned:
            await store.pin(conn, event.line_id, event.conversation_key, event.operator_id)
        else:
            await store.unpin(conn, event.line_id, event.conversation_key, event.operator_id)

    async def on_dialog_event(
        self, transition: Transition, reason: str, conn: AsyncConnection, env: Envelope
    ) -> None:
        event = env.payload
        await store.lock_routing(conn, self.schema)
        before = await store.load_slot(conn, event.dialog_id)
        freed_lines = await self._settle_stale_offers(conn, event, event.dialog_id)
        after = transition(before, event)
        if after is not None:
            # The wait starts when the dialog opened (or was transferred to the line).
            queued_at = env.occurred_at if after.status is SlotStatus.QUEUED else None
            freed_lines |= await self._apply(conn, before, after, queued_at, reason, cause=env)
            if isinstance(event, DialogOpened) and after.status is SlotStatus.QUEUED:
                await self._offer_to_pinned(conn, after, event.conversation_key, cause=env)
        await self._drain(conn, freed_lines, cause=env)

    async def _offer_to_pinned(
        self, conn: AsyncConnection, slot: DialogSlot, conversation_key: str, cause: Envelope
    ) -> None:
        """Bitrix24's "pin to me": a new dialog of a pinned conversation is offered to the
        pin's holder first, ahead of the queue, when they still serve the line and are online
        with room; otherwise it waits in the queue like any other."""
        line = self.lines.line(slot.line_id)
        operator_id = await store.pinned_to(conn, slot.line_id, conversation_key)
        if line is None or operator_id is None or operator_id not in line.operators:
            return
        if await store.try_reserve(conn, operator_id):
            await self._offer(conn, line, slot, operator_id, cause, pinned=True)

    async def _settle_stale_offers(
        self, conn: AsyncConnection, event: EventPayload, dialog_id: UUID
    ) -> set[str]:
        """Once the dialog has an assignee or is closed, no AssignDialog sent for it earlier can
        be applied any more: the capacity its expired offers held is free again."""
        settled = isinstance(event, DialogAssigned | DialogClosed) or (
            isinstance(event, DialogTransferred) and event.to_operator_id is not None
        )
        if not settled:
            return set()
        released = await store.release_stale_offers(conn, dialog_id)
        if not released:
            return set()
        await store.apply_load(conn, {op: LoadChange(reserved=-1) for op in released})
        return {line.id for op in released for line in self.lines.lines_of(op)}

    async def on_reservation_expired(self, conn: AsyncConnection, timer: timers.Timer) -> None:
        await store.lock_routing(conn, self.schema)
        dialog_id = UUID(timer.key)
        before = await store.load_slot(conn, dialog_id)
        after = domain.reservation_expired(before, str(timer.payload.get("operator_id")))
        if before is None or after is None:
            return  # confirmed, closed or re-reserved meanwhile
        log.info(
            "reservation expired, re-queueing",
            dialog_id=str(dialog_id),
            operator_id=before.operator_id,
        )
        metrics.RESERVATIONS_EXPIRED.labels(before.line_id).inc()
        # The AssignDialog already sent may still be applied (dialogs may only be lagging): its
        # operator keeps the unit until the dialog is settled. The dialog itself is offered again.
        assert before.operator_id is not None  # a reserved slot names its operator
        held = await store.hold_stale_offer(conn, dialog_id, before.operator_id)
        lines = await self._apply(
            conn,
            before,
            after,
            None,
            "reservation_expired",
            cause=None,
            hold=before.operator_id if held else None,
        )
        await self._drain(conn, lines, cause=None)

    async def _apply(
        self,
        conn: AsyncConnection,
        before: DialogSlot | None,
        after: DialogSlot,
        queued_at: datetime | None,
        reason: str,
        cause: Envelope | None,
        hold: str | None = None,
    ) -> set[str]:
        """Record a transition; returns the lines that may now be drained. `hold`: an operator
        whose reserved unit stays taken although the slot no longer counts it."""
        if before == after:
            return set()
        await store.save_slot(conn, after, queued_at=queued_at)
        delta = domain.load_delta(before, after)
        if hold is not None:
            delta = domain.with_reserved(delta, hold, +1)
        await store.apply_load(conn, delta)
        if before is not None and before.status is SlotStatus.RESERVED:
            await timers.cancel(conn, RESERVATION_TIMER, str(after.dialog_id))
        lines: set[str] = set()
        for operator_id in domain.freed_operators(delta):
            lines.update(line.id for line in self.lines.lines_of(operator_id))
        if after.status is SlotStatus.QUEUED:
            lines.add(after.line_id)
            if before is None or (before.status, before.line_id) != (after.status, after.line_id):
                await self._announce_queued(conn, after, reason, cause)
        return lines

    async def _announce_queued(
        self, conn: AsyncConnection, slot: DialogSlot, reason: str, cause: Envelope | None
    ) -> None:
        position, queued_at = await store.queue_entry(conn, slot.dialog_id)
        queued = DialogQueued(
            dialog_id=slot.dialog_id,
            line_id=slot.line_id,
            queued_at=queued_at,
            position=position,
            reason=reason,
        )
        await self.emit(conn, ROUTING, str(slot.dialog_id), queued, cause)
        metrics.QUEUED.labels(slot.line_id, reason).inc()

    # -- the queue ----------------------------------------------------------------------------

    async def drain(
        self, conn: AsyncConnection, line_ids: Iterable[str], cause: Envelope | None
    ) -> int:
        """Hand waiting dialogs to operators with room, oldest first; returns how many."""
        await store.lock_routing(conn, self.schema)
        return await self._drain(conn, line_ids, cause)

    async def _drain(
        self, conn: AsyncConnection, line_ids: Iterable[str], cause: Envelope | None
    ) -> int:
        """`drain` for callers already holding the routing lock (saves a round trip)."""
        wanted = [line for lid in sorted(set(line_ids)) if (line := self.lines.line(lid))]
        if len(wanted) == 1:
            return await self._drain_line(conn, wanted[0], cause)
        # Several lines (an operator serving them came online, start-up): one dialog at a time,
        # always from the line whose head waited longest, so that operators shared between
        # lines get the oldest dialogs among them, not all of one line first.
        handed = 0
        while wanted:
            stats = await store.queue_stats(conn, [line.id for line in wanted])
            heads = sorted(
                (s for s in stats.values() if s.waiting),
                key=lambda s: s.oldest_waiting_since or datetime.max.replace(tzinfo=UTC),
            )
            if not heads:
                return handed
            line = next(line for line in wanted if line.id == heads[0].line_id)
            if await self._drain_line(conn, line, cause, limit=1):
                handed += 1
            else:
                wanted.remove(line)  # nobody of this line has room: the others may
        return handed

    async def _drain_line(
        self, conn: AsyncConnection, line: Line, cause: Envelope | None, limit: int | None = None
    ) -> int:
        handed = 0
        while limit is None or handed < limit:
            waiting = await store.next_waiting(conn, line.id)
            if waiting is None:
                return handed
            operator_id = await self._reserve_someone(conn, line, waiting.passed_over)
            if operator_id is None:
                return handed
            await self._offer(conn, line, waiting, operator_id, cause)
            handed += 1
        return handed

    async def _offer(
        self,
        conn: AsyncConnection,
        line: Line,
        waiting: DialogSlot,
        operator_id: str,
        cause: Envelope | None,
        *,
        pinned: bool = False,
    ) -> None:
        """Offer a waiting dialog to an operator whose capacity `try_reserve` already took."""
        # try_reserve already counted the reservation: save the slot without a load delta.
        await store.save_slot(conn, domain.reserved(waiting, operator_id))
        await timers.schedule(
            conn,
            RESERVATION_TIMER,
            str(waiting.dialog_id),
            self.clock() + self.reservation_timeout,
            {"operator_id": operator_id},
        )
        strategy = PINNED_STRATEGY if pinned else line.routing
        command = AssignDialog(
            dialog_id=waiting.dialog_id, operator_id=operator_id, line_id=line.id, strategy=strategy
        )
        await self.emit(conn, DIALOG_COMMANDS, str(waiting.dialog_id), command, cause)
        metrics.ASSIGN_COMMANDS.labels(line.id, strategy).inc()
        log.info(
            "dialog offered",
            dialog_id=str(waiting.dialog_id),
            operator_id=operator_id,
            line_id=line.id,
            strategy=strategy,
        )

    async def _reserve_someone(
        self, conn: AsyncConnection, line: Line, passed_over: str | None = None
    ) -> str | None:
        """Reserve room with the operator the strategy picks; `passed_over` (who did not
        answer the dialog in time) only when nobody else has room."""
        if passed_over is not None:
            others = await self._reserve_someone(
                conn, line.model_copy(update={"operators": _without(line.operators, passed_over)})
            )
            if others is not None:
                return others
        lost: set[str] = set()
        while True:
            pool = [op for op in line.operators if op not in lost]
            choice = domain.pick_operator(line.routing, await store.candidates(conn, pool))
            if choice is None:
                return None
            if await store.try_reserve(conn, choice):
                return choice
            lost.add(choice)  # someone else took the last unit of capacity meanwhile

    # -- presence -----------------------------------------------------------------------------

    async def set_presence(
        self, conn: AsyncConnection, operator_id: str, status: PresenceStatus
    ) -> PresenceStatus | None:
        """Record the operator's presence; returns the previous one. Online drains at once."""
        await store.lock_routing(conn, self.schema)
        configured = self.lines.operator(operator_id)
        await store.ensure_operator(
            conn, operator_id, configured.max_dialogs if configured is not None else 0
        )
        previous = await store.presence_for_update(conn, operator_id)
        line_ids = [line.id for line in self.lines.lines_of(operator_id)]
        if previous is not status:
            await store.set_presence(conn, operator_id, status)
            changed = OperatorPresenceChanged(
                operator_id=operator_id,
                status=status,
                previous_status=previous,
                line_ids=tuple(line_ids),
            )
            await self.emit(conn, ROUTING, operator_id, changed, cause=None)
        if status is PresenceStatus.ONLINE:
            await self._drain(conn, line_ids, cause=None)
        return previous

    # -- output -------------------------------------------------------------------------------

    async def emit(
        self,
        conn: AsyncConnection,
        topic: str,
        key: str,
        payload: EventPayload,
        cause: Envelope[Any] | None,
    ) -> None:
        envelope = Envelope.new(
            payload, stream_id=key, stream_version=0, producer=self.producer, cause=cause
        )
        await self.outbox.enqueue(conn, topic, [envelope])


def _without(operators: tuple[str, ...], operator_id: str) -> tuple[str, ...]:
    return tuple(op for op in operators if op != operator_id)
