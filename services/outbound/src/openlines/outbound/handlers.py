"""The DIALOGS consumer: it only records what to send, in the runner's transaction.

The provider is never called from here: a consumer transaction can be retried or rolled back,
and a send cannot. The sender loop (sender.py) works from the recorded jobs.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import Direction, MessageAppended
from openlines.events.envelope import Envelope
from openlines.kit.subscription import Subscription
from openlines.outbound import jobs
from openlines.outbound.domain import send_job_for


def subscribe(sub: Subscription) -> None:
    # Customer messages (their provider ids) and replies; notes and system messages never
    # leave, so they cost no transaction here.
    sub.on(MessageAppended, when=lambda m: m.direction in (Direction.IN, Direction.OUT))(
        record_message
    )


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
