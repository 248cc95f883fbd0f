"""The consumer (group `notify.webhooks`): every event of the public topics becomes one
delivery row per subscription that takes it, in the consumer's transaction, so a crash
between the two loses nothing and the inbox makes a redelivered record a no-op. No receiver
is ever called from here: a dead receiver cannot slow the stream (the dispatcher works from
the rows)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.events.lines import LinesConfig
from openlines.notify.webhooks import store
from openlines.notify.webhooks.domain import line_hint, order_key


class WebhookFanout:
    def __init__(
        self, lines: LinesConfig, retry_for_seconds: float, wake: Callable[[], None]
    ) -> None:
        self.lines = lines
        self.retry_for_seconds = retry_for_seconds
        self._wake = wake
        self._queued = 0

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        hint = line_hint(envelope.payload, self.lines)
        dialog_id = getattr(envelope.payload, "dialog_id", None)
        if not isinstance(dialog_id, uuid.UUID):
            dialog_id = None
        if hint.moves_dialog and dialog_id is not None and hint.line_id is not None:
            await store.remember_line(conn, dialog_id, hint.line_id)
        event = store.NewEvent(
            event_id=envelope.event_id,
            event_type=envelope.type,
            order_key=order_key(envelope),
            # The bytes of the Kafka record (the same serializer): what the receiver gets.
            body=encode(envelope).value,
            line_id=hint.line_id,
            fallback_line=hint.fallback,
            dialog_id=dialog_id,
        )
        self._queued += await store.record(conn, event, self.retry_for_seconds)

    async def after_commit(self, _: list[Envelope]) -> None:
        if self._queued:
            self._queued = 0
            self._wake()  # look now rather than at the next poll
