"""The event store: append with optimistic concurrency inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.codec import from_json_dict
from openlines.events.envelope import Envelope, EventPayload
from openlines.kit.db.tables import events
from openlines.kit.outbox import Outbox
from openlines.kit.topics import TopicNames

# Built once: per-call construction costs more CPU than executing them.
INSERT_EVENTS = insert(events).on_conflict_do_nothing().returning(events.c.event_id)
LOAD_STREAM = (
    select(events)
    .where(
        events.c.stream_id == bindparam("stream_id"),
        events.c.stream_version > bindparam("after_version"),
    )
    .order_by(events.c.stream_version)
)


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream since the caller loaded it."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id!r} is past version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class DuplicateEvent(Exception):
    """An event with this event_id is already stored (e.g. a provider retry)."""

    def __init__(self, event_ids: Sequence[UUID]) -> None:
        super().__init__(f"event already stored: {', '.join(map(str, event_ids))}")
        self.event_ids = list(event_ids)


@dataclass(frozen=True)
class NewEvent:
    """A payload plus the envelope facts a caller may want to pin down."""

    payload: EventPayload
    event_id: UUID | None = None
    occurred_at: datetime | None = None


class EventStore:
    def __init__(self, schema: str, producer: str, topics: TopicNames | None = None) -> None:
        self.producer = producer
        self.outbox = Outbox(schema, topics)

    async def append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        new_events: Sequence[EventPayload | NewEvent],
        *,
        topic: str,
        cause: Envelope | None = None,
        correlation_id: UUID | None = None,
    ) -> list[Envelope]:
        """Append after `expected_version` (0 for a new stream) and queue for publishing.

        Raises ConcurrencyConflict when the stream moved on, DuplicateEvent when an event_id is
        already stored. Either way the caller's transaction is still usable (a savepoint
        absorbed the failed insert). A concurrent writer of the same stream waits on the
        unique index until this transaction ends, which is what keeps streams in order.
        """
        envelopes = [
            self._envelope(item, stream_id, expected_version + i, cause, correlation_id)
            for i, item in enumerate(new_events, start=1)
        ]
        if not envelopes:
            return []
        rows = [
            {
                "event_id": env.event_id,
                "stream_id": env.stream_id,
                "stream_version": env.stream_version,
                "type": env.type,
                "schema_version": env.schema_version,
                "topic": topic,
                "occurred_at": env.occurred_at,
                "recorded_at": env.recorded_at,
                "correlation_id": env.correlation_id,
                "causation_id": env.causation_id,
                "producer": env.producer,
                "payload": env.payload.model_dump(mode="json"),
            }
            for env in envelopes
        ]
        # ON CONFLICT DO NOTHING instead of a savepoint: the happy path is one statement.
        # A clash on either unique index leaves fewer rows inserted than asked for; those
        # few are removed again so the caller's transaction holds nothing of this append.
        inserted = (await conn.execute(INSERT_EVENTS, rows)).scalars().all()
        if len(inserted) < len(rows):
            if inserted:
                await conn.execute(delete(events).where(events.c.event_id.in_(inserted)))
            await self._raise_clash(conn, stream_id, expected_version, envelopes)
        await self.outbox.enqueue(conn, topic, envelopes)
        return envelopes

    async def _raise_clash(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        envelopes: Sequence[Envelope],
    ) -> NoReturn:
        ids = [env.event_id for env in envelopes]
        stored = (
            (await conn.execute(select(events.c.event_id).where(events.c.event_id.in_(ids))))
            .scalars()
            .all()
        )
        if stored:
            raise DuplicateEvent(list(stored))
        raise ConcurrencyConflict(stream_id, expected_version)

    async def load(
        self, conn: AsyncConnection, stream_id: str, after_version: int = 0
    ) -> list[Envelope]:
        result = await conn.execute(
            LOAD_STREAM, {"stream_id": stream_id, "after_version": after_version}
        )
        return [self._from_row(row._mapping) for row in result]

    async def version(self, conn: AsyncConnection, stream_id: str) -> int:
        result = await conn.execute(
            select(func.coalesce(func.max(events.c.stream_version), 0)).where(
                events.c.stream_id == stream_id
            )
        )
        return int(result.scalar_one())

    def _envelope(
        self,
        item: EventPayload | NewEvent,
        stream_id: str,
        version: int,
        cause: Envelope | None,
        correlation_id: UUID | None,
    ) -> Envelope:
        new = item if isinstance(item, NewEvent) else NewEvent(item)
        return Envelope.new(
            new.payload,
            stream_id=stream_id,
            stream_version=version,
            producer=self.producer,
            event_id=new.event_id,
            occurred_at=new.occurred_at,
            correlation_id=correlation_id or (cause.correlation_id if cause else None),
            causation_id=cause.event_id if cause else None,
        )

    @staticmethod
    def _from_row(row: object) -> Envelope:
        data = dict(row)  # type: ignore[call-overload]
        topic = data.pop("topic")
        data.pop("position")
        return from_json_dict(data, topic=topic)
