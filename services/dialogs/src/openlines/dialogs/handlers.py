"""Consumers: inbound messages, routing's commands, outbound results and CRM links.

Each handler runs inside the kit consumer's transaction (which also records the event id in
the inbox), so a redelivered record has no effect. Event ids we derive from an input event are
deterministic too (`id_seed`), a second line of defence. Handlers change dialogs through the
writer and look up or lock through `store` (the write side's tables); no SQL here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import store
from openlines.dialogs.domain import Dialog, DialogIsClosed, DomainError
from openlines.dialogs.domain.feedback import digit_score, parse_rating_data
from openlines.dialogs.writer import Decide, DialogWriter
from openlines.events.catalog import (
    AssignDialog,
    ButtonPressed,
    CloseDialog,
    DeliveryReceiptReceived,
    DeliveryStatus,
    DialogLinkedToCrm,
    InboundMessageEdited,
    MessageDispatched,
    MessageDispatchFailed,
    MessageReceived,
    ReturnToQueue,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import Envelope, EventPayload, utc_now
from openlines.events.lines import Csat, LinesConfig
from openlines.kit.log import get_logger
from openlines.kit.subscription import Subscription

log = get_logger(__name__)


def opened_dialog_id(inbound_event_id: UUID) -> UUID:
    """The dialog a MessageReceived opens: reprocessing it opens the same one."""
    return uuid.uuid5(inbound_event_id, "dialog")


def inbound_message_id(inbound_event_id: UUID) -> UUID:
    return uuid.uuid5(inbound_event_id, "message")


class UnknownChannel(Exception):
    """An inbound event for a channel the lines config does not know (poison: DLQ)."""


E = TypeVar("E", bound=EventPayload)


def with_payload(
    method: Callable[[AsyncConnection, Envelope, E], Awaitable[None]],
) -> Callable[[AsyncConnection, Envelope], Awaitable[None]]:
    """A handler (conn, env) for a method that also takes the typed payload."""

    async def handle(conn: AsyncConnection, env: Envelope) -> None:
        await method(conn, env, env.payload)

    return handle


class Handlers:
    def __init__(self, writer: DialogWriter, lines: LinesConfig) -> None:
        self.writer = writer
        self.lines = lines

    # -- one consumer for all four input topics --------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        """Every input of this service goes through one consumer, so one batch at a time
        writes dialogs: as four consumers, batches locked the same dialogs in opposite
        orders under load, and Postgres broke the deadlocks only after a second. (The CRM
        topic also carries LeadCreated and CustomerIdentified: not ours.)"""
        sub.on(MessageReceived)(with_payload(self._message_received))
        sub.on(InboundMessageEdited)(with_payload(self._message_edited))
        sub.on(DeliveryReceiptReceived)(with_payload(self._receipt))
        sub.on(MessageDispatched)(with_payload(self._dispatched))
        sub.on(DialogLinkedToCrm)(with_payload(self._linked_to_crm))
        sub.on(MessageDispatchFailed)(with_payload(self._dispatch_failed))
        sub.on(AssignDialog, CloseDialog, ReturnToQueue)(self._decided)
        sub.on(SlaWarningReached, SlaBreached)(self._sla_reached)
        sub.on(ButtonPressed)(with_payload(self._button_pressed))

    async def _decided(self, conn: AsyncConnection, env: Envelope) -> None:
        event = env.payload
        await self._execute_or_log(conn, event.dialog_id, _decision(event), env)

    async def _sla_reached(self, conn: AsyncConnection, env: Envelope) -> None:
        """Routing's SLA marker, shown in the timeline (staff only)."""
        reached: SlaWarningReached | SlaBreached = env.payload
        now = utc_now()
        await self._execute_or_log(
            conn,
            reached.dialog_id,
            lambda d: d.note_sla(
                reached, system_message_id=uuid.uuid5(env.event_id, "sla"), now=now
            ),
            env,
        )

    # -- openlines.inbound.v1 -------------------------------------------------------------

    async def _message_received(
        self, conn: AsyncConnection, env: Envelope, event: MessageReceived
    ) -> None:
        current = await store.lock_conversation(conn, event.conversation_key)
        known = await store.inbound_dialog(conn, event.conversation_key, event.external_message_id)
        if known is not None:
            log.info(
                "duplicate inbound message ignored",
                conversation_key=event.conversation_key,
                external_message_id=event.external_message_id,
            )
            return
        message_id = inbound_message_id(env.event_id)
        previous: Dialog | None = None
        if current is not None:
            previous = await self.writer.load(conn, current)
            if previous.is_open:
                try:
                    await self.writer.execute(
                        conn,
                        current,
                        lambda d: d.receive(event, message_id=message_id),
                        cause=env,
                        id_seed=str(env.event_id),
                        loaded=previous,
                    )
                    return
                except DialogIsClosed:
                    # An operator closed it meanwhile: the customer starts a new dialog.
                    previous = await self.writer.load(conn, current)
            if await self._rated_by_digit(conn, env, event, previous):
                return
        line_id = event.line_id or self._line_of(event.channel_id)
        await self.writer.execute(
            conn,
            opened_dialog_id(env.event_id),
            lambda d: d.open_from_inbound(
                event,
                message_id=message_id,
                line_id=line_id,
                previous_dialog_id=previous.id if previous else None,
                customer_id=previous.crm.customer_id if previous else None,
                # A pin holds on its line only ("pin to me" on that line).
                pinned_to=previous.pinned_to if previous and previous.line_id == line_id else None,
            ),
            cause=env,
            id_seed=str(env.event_id),
        )

    async def _rated_by_digit(
        self, conn: AsyncConnection, env: Envelope, event: MessageReceived, dialog: Dialog
    ) -> bool:
        """A digit the customer writes to a closed dialog that awaits their rating answers
        it: rated, and no new dialog. Anything else is a message as always."""
        if dialog.is_open or not dialog.rating_pending or event.attachments:
            return False
        score = digit_score(event.text, self._csat(dialog).scale)
        if score is None:
            return False
        await self._execute_or_log(
            conn, dialog.id, lambda d: d.rate_by_customer(score, scale=self._csat(d).scale), env
        )
        return True

    async def _button_pressed(
        self, conn: AsyncConnection, env: Envelope, press: ButtonPressed
    ) -> None:
        """A button under one of our messages. `csat:` buttons rate the dialog they name,
        if the press comes from that dialog's conversation (data can be forged)."""
        rating = parse_rating_data(press.data)
        if rating is None:
            log.info("button press ignored", data=press.data, channel=press.channel_id)
            return
        dialog_id, score = rating
        dialog = await self.writer.load(conn, dialog_id)
        if not dialog.exists or dialog.conversation_key != press.conversation_key:
            log.info(
                "rating of another conversation's dialog ignored",
                dialog_id=str(dialog_id),
                conversation_key=press.conversation_key,
            )
            return
        await self._execute_or_log(
            conn, dialog_id, lambda d: d.rate_by_customer(score, scale=self._csat(d).scale), env
        )

    def _csat(self, dialog: Dialog) -> Csat:
        line = self.lines.line(dialog.line_id)
        return line.csat if line is not None else Csat()

    def _line_of(self, channel_id: str) -> str:
        found = self.lines.channel(channel_id)
        if found is None:
            raise UnknownChannel(f"channel {channel_id!r} is not in the lines config")
        return found[0].id

    async def _message_edited(
        self, conn: AsyncConnection, env: Envelope, event: InboundMessageEdited
    ) -> None:
        dialog_id = await store.inbound_dialog(
            conn, event.conversation_key, event.external_message_id
        )
        if dialog_id is None:
            log.info("edit of an unknown message ignored", conversation_key=event.conversation_key)
            return
        await self._execute_or_log(
            conn,
            dialog_id,
            lambda d: d.edit_inbound(
                event.external_message_id,
                text=event.text,
                attachments=event.attachments,
                edited_at=event.edited_at,
            ),
            env,
        )

    async def _receipt(
        self, conn: AsyncConnection, env: Envelope, event: DeliveryReceiptReceived
    ) -> None:
        # The conversation lock orders this against MessageDispatched draining parked receipts.
        await store.lock_conversation(conn, event.conversation_key)
        sent = await store.outbound_by_provider_id(
            conn, event.conversation_key, event.provider_message_id
        )
        if sent is None:
            # The receipt overtook MessageDispatched (another topic): keep it for then.
            await store.park_receipt(conn, event)
            return
        await self._execute_or_log(
            conn,
            sent.dialog_id,
            lambda d: d.update_delivery(
                sent.message_id,
                event.status,
                provider_message_id=event.provider_message_id,
                reason=event.reason,
            ),
            env,
        )

    # -- openlines.outbound.v1 (a failed send is a plain decision: see `_decision`) -------

    async def _dispatched(
        self, conn: AsyncConnection, env: Envelope, result: MessageDispatched
    ) -> None:
        if result.change is not None:
            return  # an edit or deletion went through: the timeline shows it already
        key = await store.conversation_of_outbound(conn, result.message_id)
        if key is not None:
            await store.lock_conversation(conn, key)
        dialog = await self._execute_or_log(
            conn,
            result.dialog_id,
            lambda d: d.update_delivery(
                result.message_id,
                DeliveryStatus.SENT,
                provider_message_id=result.provider_message_id,
            ),
            env,
        )
        if dialog is not None:
            await self._apply_parked_receipts(conn, env, dialog, result)

    async def _apply_parked_receipts(
        self, conn: AsyncConnection, env: Envelope, dialog: Dialog, result: MessageDispatched
    ) -> None:
        parked = await store.take_parked_receipts(
            conn, dialog.conversation_key, result.provider_message_id
        )
        rank = {DeliveryStatus.DELIVERED: 0, DeliveryStatus.READ: 1, DeliveryStatus.FAILED: 2}
        for receipt in sorted(parked, key=lambda r: rank[r.status]):
            await self._execute_or_log(
                conn,
                dialog.id,
                _delivery(result.message_id, receipt.status, result, receipt.reason),
                env,
                id_seed=f"{env.event_id}/receipt/{receipt.status}",
            )

    async def _dispatch_failed(
        self, conn: AsyncConnection, env: Envelope, result: MessageDispatchFailed
    ) -> None:
        if result.change is None:
            await self._decided(conn, env)
            return
        # The provider refused an edit or deletion: never silently, the staff see it.
        change, now = result.change, utc_now()
        await self._execute_or_log(
            conn,
            result.dialog_id,
            lambda d: d.note_change_refused(
                result.message_id,
                change,
                result.reason,
                system_message_id=uuid.uuid5(env.event_id, "change-refused"),
                now=now,
            ),
            env,
        )

    # -- openlines.crm.v1 -----------------------------------------------------------------

    async def _linked_to_crm(
        self, conn: AsyncConnection, env: Envelope, link: DialogLinkedToCrm
    ) -> None:
        now = utc_now()
        await self._execute_or_log(
            conn,
            link.dialog_id,
            lambda d: d.link_crm(
                link, system_message_id=uuid.uuid5(env.event_id, "crm-link"), now=now
            ),
            env,
        )

    # -- shared ---------------------------------------------------------------------------

    async def _execute_or_log(
        self,
        conn: AsyncConnection,
        dialog_id: UUID,
        decide: Decide,
        env: Envelope,
        *,
        id_seed: str | None = None,
    ) -> Dialog | None:
        """Record what `decide` returns; a refusal is an outcome, not a failure: log it."""
        try:
            return await self.writer.execute(
                conn, dialog_id, decide, cause=env, id_seed=id_seed or str(env.event_id)
            )
        except DomainError as exc:
            log.info(
                "event not applied",
                type=env.type,
                event_id=str(env.event_id),
                dialog_id=str(dialog_id),
                reason=exc.code,
                detail=exc.message,
            )
            return None


def _decision(event: AssignDialog | CloseDialog | ReturnToQueue | MessageDispatchFailed) -> Decide:
    """Routing's commands and a failed send: one decision each on its dialog."""
    if isinstance(event, AssignDialog):
        return lambda d: d.assign_by_routing(
            event.operator_id,
            line_id=event.line_id,
            strategy=event.strategy,
            expected_operator_id=event.expected_operator_id,
        )
    if isinstance(event, CloseDialog):
        return _guarded(event.expected_version, lambda d: d.close(event.actor_id, event.reason))
    if isinstance(event, ReturnToQueue):
        return _guarded(
            event.expected_version,
            lambda d: d.return_to_queue(event.reason, operator_id=event.operator_id),
        )
    return lambda d: d.update_delivery(event.message_id, DeliveryStatus.FAILED, reason=event.reason)


def _guarded(expected_version: int | None, decide: Decide) -> Decide:
    """A timer's command: nothing if the dialog changed since the timer decided (routing
    re-arms the timer from that change)."""

    def decide_if_unchanged(d: Dialog) -> Sequence[EventPayload]:
        d.require_version(expected_version)
        return decide(d)

    return decide_if_unchanged


def _delivery(
    message_id: UUID, status: DeliveryStatus, result: MessageDispatched, reason: str | None
) -> Decide:
    return lambda d: d.update_delivery(
        message_id, status, provider_message_id=result.provider_message_id, reason=reason
    )
