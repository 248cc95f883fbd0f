"""The DIALOGS consumer: it only records what to send, in the runner's transaction.

The provider is never called from here: a consumer transaction can be retried or rolled back,
and a send cannot. The sender loop (sender.py) works from the recorded jobs.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import (
    DialogMessageEdited,
    Direction,
    MessageAppended,
    MessageChange,
    MessageDeleted,
)
from openlines.events.envelope import Envelope
from openlines.kit.log import get_logger
from openlines.kit.subscription import Subscription
from openlines.outbound import jobs
from openlines.outbound.domain import change_job_id, send_job_for

log = get_logger(__name__)


def subscribe(sub: Subscription) -> None:
    # Customer messages (their provider ids) and replies; notes and system messages never
    # leave, so they cost no transaction here.
    sub.on(MessageAppended, when=lambda m: m.direction in (Direction.IN, Direction.OUT))(
        record_message
    )
    # An operator's edit or deletion (the customer's own edits have no actor: nothing to do).
    sub.on(DialogMessageEdited, when=lambda e: e.actor_id is not None)(record_change)
    sub.on(MessageDeleted, when=lambda e: e.actor_id is not None)(record_change)


async def record_message(conn: AsyncConnection, envelope: Envelope[MessageAppended]) -> None:
    message = envelope.payload
    if message.direction is Direction.IN and message.external_message_id:
        # So that an operator's reply can quote the customer's message on the provider.
        await jobs.remember_provider_id(conn, message.message_id, message.external_message_id)
        return
    job = send_job_for(
        message,
        event_id=envelope.event_id,
        correlation_id=envelope.correlation_id or envelope.event_id,
    )
    if job is not None:
        await jobs.record(conn, job)


async def record_change(
    conn: AsyncConnection, envelope: Envelope[DialogMessageEdited | MessageDeleted]
) -> None:
    event = envelope.payload
    recorded = await jobs.record_change(
        conn,
        change_job_id(envelope.event_id),
        event.message_id,
        MessageChange.EDIT if isinstance(event, DialogMessageEdited) else MessageChange.DELETE,
        event.text if isinstance(event, DialogMessageEdited) else None,
        source_event_id=envelope.event_id,
        correlation_id=envelope.correlation_id or envelope.event_id,
    )
    if not recorded:
        log.info(
            "change of a message outbound never sent ignored", message_id=str(event.message_id)
        )
