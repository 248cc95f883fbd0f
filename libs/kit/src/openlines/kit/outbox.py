"""The transactional outbox: records written with the business change, published by a relay.

Ordering (DESIGN §5): BIGSERIAL positions from concurrent transactions commit out of order, so
a relay that kept a cursor ("position > last published") could skip a row that commits late.
This relay keeps no cursor: it publishes whatever is visible, in position order, and deletes
exactly the rows it published. A late-committing row is simply published in a later round, so
nothing is ever skipped, and writers never wait for each other.

Per-stream order still holds: version n+1 of a stream can only be appended once the
transaction holding version n has committed (the unique (stream_id, stream_version) index
makes it wait), so whenever n+1 is visible, n is visible too and has the lower position.
Global order across streams is not promised (Kafka only orders within a partition anyway).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.db.tables import outbox
from openlines.kit.telemetry import current_traceparent
from openlines.kit.topics import TopicNames

_INSERT = insert(outbox)  # built once: construction per call costs more than the execution


def relay_lock_key(schema: str) -> int:
    # A stable signed 64-bit key per schema: the relay leader holds it (pg_try_advisory_lock).
    return zlib.crc32(f"openlines-relay:{schema}".encode()) - (1 << 31)


def notify_channel(schema: str) -> str:
    # Must match the outbox_notify() trigger function of kit migration 0002.
    return f"openlines_outbox_{schema}"


class Outbox:
    """Writes records for the relay inside the caller's transaction."""

    def __init__(self, schema: str, topics: TopicNames | None = None) -> None:
        self.schema = schema
        self.topics = topics or TopicNames()

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
        # A statement trigger (kit migration 0002) NOTIFYs the relay when this commits.
        await conn.execute(_INSERT, rows)
