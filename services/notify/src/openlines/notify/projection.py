"""The consumer: keep dialog views current and push each applied event to its audience.

The audience is worked out in the handler, against the view as of that event (a transfer
later in the same batch must not redirect an earlier message), but pushed only from the
after-commit hook: a session never sees an event whose effect was rolled back, and a
redelivered event (a no-op for the inbox) never reaches the hook, so it is not pushed twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.envelope import Envelope
from openlines.kit.log import get_logger
from openlines.notify import views
from openlines.notify.counters import LiveCounters
from openlines.notify.domain import DialogView, apply, audience_for, is_stale
from openlines.notify.hub import Notification, SessionHub

log = get_logger(__name__)


class StreamProjection:
    def __init__(
        self, hub: SessionHub, push_max_age_seconds: float, counters: LiveCounters
    ) -> None:
        self.hub = hub
        self.counters = counters
        self.push_max_age_seconds = push_max_age_seconds
        # Audiences of the batch in hand, by event id; a retried batch overwrites them.
        self._pending: dict[UUID, Notification] = {}

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        moved = await project_view(conn, envelope)
        if moved is None:
            return  # seen before: nothing to push again
        before, after = moved
        audience = audience_for(envelope.payload, before, after)
        self._pending[envelope.event_id] = Notification(envelope, audience)

    async def after_commit(self, applied: list[Envelope]) -> None:
        try:
            now = datetime.now(UTC)
            for envelope in applied:
                notification = self._pending.get(envelope.event_id)
                if notification is None:
                    continue
                age = (now - envelope.recorded_at).total_seconds()
                if age > self.push_max_age_seconds:
                    continue  # history (a replay or a long outage), not news
                self.hub.publish(notification)
            await self.counters.refresh(self.hub.take_pushed())
        finally:
            self._pending.clear()


async def project_view(
    conn: AsyncConnection, envelope: Envelope
) -> tuple[DialogView | None, DialogView | None] | None:
    """Move the dialog's view by one event: the read model's one projection, used live and by
    `openlines replay notify`. Returns the view before and after (both None for an event of no
    dialog), or None when the event was applied before (a redelivery or a replay over live
    data)."""
    payload = envelope.payload
    dialog_id = getattr(payload, "dialog_id", None)
    if not isinstance(dialog_id, UUID):
        return None, None
    before = await views.load(conn, dialog_id)
    if is_stale(before, payload, envelope.stream_version):
        return None
    after = apply(before, payload, envelope.stream_version)
    if after is not None and after != before:
        await views.save(conn, dialog_id, after)
    return before, after
