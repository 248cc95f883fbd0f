"""A minimal batch projection for replay tests: one row per event, written with COPY.

It lives in an importable module (not a test file) because parallel replay workers are
separate processes that import their batch handler by reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.envelope import Envelope

EVENT_LOG_DDL = (
    "CREATE TABLE event_log (event_id uuid PRIMARY KEY, stream_id text NOT NULL, "
    "stream_version int NOT NULL, type text NOT NULL)"
)


async def copy_into_event_log(conn: AsyncConnection, batch: Sequence[Envelope]) -> None:
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    async with pg.cursor().copy(
        "COPY event_log (event_id, stream_id, stream_version, type) FROM STDIN"
    ) as copy:
        for env in batch:
            await copy.write_row((env.event_id, env.stream_id, env.stream_version, env.type))
