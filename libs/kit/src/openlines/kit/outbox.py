"""The transactional outbox: records written with the business change, published by a relay.

Ordering (DESIGN §5): BIGSERIAL positions from concurrent transactions can commit out of
order, so a relay reading "position > last" could skip a row that commits late. Every writer
takes one transaction-scoped advisory lock per schema right before inserting into the outbox
and holds it until commit; positions are therefore handed out in commit order and a relay
that reads in position order never overtakes an uncommitted row. The cost is that the tail of
writing transactions (outbox insert -> commit) is serialised per service, so write the outbox
last in a unit of work.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.db.tables import outbox
from openlines.kit.telemetry import current_traceparent
from openlines.kit.topics import TopicNames


def outbox_lock_key(schema: str) -> int:
    # A stable signed 64-bit key per schema for pg_advisory_xact_lock.
    return zlib.crc32(f"openlines-outbox:{schema}".encode()) - (1 << 31)


def notify_channel(schema: str) -> str:
    return f"openlines_outbox_{schema}"


class Outbox:
    """Writes records for the relay inside the caller's transaction."""

    def __init__(self, schema: str, topics: TopicNames | None = None) -> None:
        self.schema = schema
        self.topics = topics or TopicNames()
        self._lock = text("SELECT pg_advisory_xact_lock(:key), pg_notify(:channel, '')").bindparams(
            key=outbox_lock_key(schema), channel=notify_channel(schema)
        )

    async def enqueue(
        self, conn: AsyncConnection, topic: str, envelopes: Sequence[Envelope]
    ) -> None:
        """Queue `envelopes` for the logical `topic`, in the caller's transaction."""
        if not envelopes:
            return
        traceparent = current_traceparent()
        rows = []
        for env in envelopes:
            record = encode(env, traceparent=traceparent)
            rows.append(
                {
                    "topic": self.topics.physical(topic),
                    "key": record.key,
                    "value": record.value,
                    "headers": {k: v.decode() for k, v in record.headers},
                }
            )
        await conn.execute(self._lock)
        await conn.execute(insert(outbox), rows)
