"""Dead letters of the outbox relay: listing them and re-driving them (`openlines deadletters`).

A re-drive publishes the record straight to its topic and waits for the ack, inside a
transaction that holds the row (FOR UPDATE SKIP LOCKED): two re-drives cannot both send it, and
a record that still cannot be published fails clearly and stays. Published, the row is deleted.

Ordering: the relay moved on past a dead letter, so later events of the same stream were
published before it. A re-driven event arrives after them: consumers that dedupe by event_id
apply it late; a consumer that gates on stream_version (notify's dialog view) treats it as seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from psycopg import sql

from openlines.kit.db.engine import check_schema_name


@dataclass(frozen=True)
class DeadLetter:
    schema: str
    id: uuid.UUID
    position: int
    topic: str
    key: str
    type: str | None
    event_id: str | None
    size: int
    error: str
    failed_at: datetime


@dataclass(frozen=True)
class Redriven:
    letter: DeadLetter
    error: str | None  # None: published and removed


async def schemas_with_dead_letters(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Every service schema of the database that has the kit's dead_letters table."""
    cur = await conn.execute(
        "SELECT table_schema FROM information_schema.tables"
        " WHERE table_name = 'dead_letters' ORDER BY table_schema"
    )
    return [row[0] for row in await cur.fetchall()]


_COLUMNS = "id, position, topic, key, headers, length(value), error, failed_at"


def _letter(schema: str, row: Sequence[Any]) -> DeadLetter:
    id_, position, topic, key, headers, size, error, failed_at = row
    return DeadLetter(
        schema=schema,
        id=id_,
        position=position,
        topic=topic,
        key=bytes(key).decode(errors="replace"),
        type=headers.get("type"),
        event_id=headers.get("event_id"),
        size=size,
        error=error,
        failed_at=failed_at,
    )


async def list_dead_letters(
    conn: psycopg.AsyncConnection[Any], schemas: Sequence[str]
) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for schema in schemas:
        check_schema_name(schema)
        query = sql.SQL("SELECT {} FROM {}.dead_letters ORDER BY position").format(
            sql.SQL(_COLUMNS), sql.Identifier(schema)
        )
        cur = await conn.execute(query)
        found += [_letter(schema, row) for row in await cur.fetchall()]
    return found


async def redrive(
    conn: psycopg.AsyncConnection[Any],
    producer: AIOKafkaProducer,
    schemas: Sequence[str],
    ids: Sequence[uuid.UUID] | None = None,
) -> list[Redriven]:
    """Publish the dead letters `ids` (None: all of them) of `schemas`, in position order."""
    outcomes: list[Redriven] = []
    for schema in schemas:
        check_schema_name(schema)
        where = sql.SQL("") if ids is None else sql.SQL(" WHERE id = ANY(%(ids)s)")
        query = sql.SQL(
            "SELECT {}, value FROM {}.dead_letters{} ORDER BY position FOR UPDATE SKIP LOCKED"
        ).format(sql.SQL(_COLUMNS), sql.Identifier(schema), where)
        delete = sql.SQL("DELETE FROM {}.dead_letters WHERE id = %s").format(sql.Identifier(schema))
        async with conn.transaction():
            cur = await conn.execute(query, {"ids": list(ids or [])})
            for row in await cur.fetchall():
                letter = _letter(schema, row[:-1])
                key, headers, value = bytes(row[3]), row[4], bytes(row[-1])
                try:
                    await producer.send_and_wait(
                        letter.topic,
                        value,
                        key=key,
                        headers=[(k, str(v).encode()) for k, v in headers.items()],
                    )
                except KafkaError as exc:
                    outcomes.append(Redriven(letter, repr(exc)))
                    continue
                await conn.execute(delete, (letter.id,))
                outcomes.append(Redriven(letter, None))
    return outcomes
