"""The log survives a restart of the embedded stack: topics restored from the event stores.

Tansu (the embedded broker) keeps its log in memory, while Postgres keeps every service's
event store. When `openlines up` starts a broker that lacks the history an event store holds,
each such topic gets its events back from the store before any service starts: in the store's
commit order (`position`, which is each stream's order), with the original event ids, keys
(the stream id) and headers (`type`, `schema_version`, `event_id`; the `traceparent` of the
original write is not stored, so restored records carry none).

We restore the topics rather than teaching replay to read the event stores where a topic lacks
history: then every reader of the topics (replay, export, `openlines tail --from-beginning`,
other companies' consumers, a service's consumer whose group the broker forgot) sees one
complete log through one interface, and production, where Apache Kafka keeps the topics, runs
exactly the same code with nothing to restore.

Transport-only topics are not in any event store and so are not restored: `inbound`
(ingest's webhooks), `dialogs.commands` and `routing` (routing), `outbound` (send results).
Every effect they have on a read model is recorded as an event of a stored stream by the
service that consumes them (dialogs records `MessageAppended`, `DialogAssigned`,
`MessageDeliveryUpdated`...), so no read model needs them for its rebuild
(openlines.replay.models).

A topic that already holds records is left alone (a broker that kept its log; a production
cluster). A restored record may later be published once more by the relay (it was in the
outbox when the stack stopped): consumers deduplicate by event id, as for any redelivery.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql
from psycopg.rows import dict_row

from openlines.events.codec import encode, from_json_dict
from openlines.kit.db.engine import libpq_dsn
from openlines.kit.kafka.producer import create_producer
from openlines.kit.topics import TopicNames

BATCH = 5000


@dataclass(frozen=True)
class Restored:
    schema: str
    topic: str
    events: int


async def restore_topics(
    database_url: str, bootstrap: str, names: TopicNames | None = None
) -> list[Restored]:
    """Give every empty topic back the events the event stores hold for it."""
    names = names or TopicNames()
    restored: list[Restored] = []
    async with await psycopg.AsyncConnection.connect(libpq_dsn(database_url)) as conn:
        stores = await _topics_in_stores(conn)
        if not stores:
            return []
        ends = await _record_counts(bootstrap, [names.physical(t) for _, t, _ in stores])
        todo = [(s, t, n) for s, t, n in stores if ends.get(names.physical(t), 0) == 0]
        if not todo:
            return []
        producer = create_producer(bootstrap, client_id="openlines-restore", linger_ms=5)
        await producer.start()
        try:
            for schema, topic, _ in todo:
                count = await _restore(conn, producer, schema, topic, names.physical(topic))
                restored.append(Restored(schema, topic, count))
        finally:
            await producer.stop()
    return restored


async def _topics_in_stores(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str, int]]:
    """(schema, logical topic, events) of every service schema's event store."""
    schemas = await (
        await conn.execute(
            "SELECT table_schema FROM information_schema.columns "
            "WHERE table_name = 'events' AND column_name = 'stream_version' ORDER BY 1"
        )
    ).fetchall()
    found = []
    for (schema,) in schemas:
        rows = await (
            await conn.execute(
                sql.SQL(
                    "SELECT topic, count(*) FROM {}.events GROUP BY topic ORDER BY topic"
                ).format(sql.Identifier(schema))
            )
        ).fetchall()
        found += [(schema, topic, count) for topic, count in rows]
    return found


async def _record_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records each topic holds (the end offsets; a topic the broker lacks holds none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        counts: dict[str, int] = {}
        for topic in set(topics):
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            counts[topic] = sum(ends.values())
        return counts
    finally:
        await consumer.stop()


async def _restore(
    conn: psycopg.AsyncConnection[Any], producer: Any, schema: str, topic: str, physical: str
) -> int:
    query = sql.SQL(
        "SELECT event_id, type, schema_version, stream_id, stream_version, occurred_at, "
        "recorded_at, correlation_id, causation_id, producer, payload "
        "FROM {}.events WHERE topic = %s ORDER BY position"
    ).format(sql.Identifier(schema))
    count = 0
    async with conn.transaction(), conn.cursor(name="restore", row_factory=dict_row) as cursor:
        await cursor.execute(query, (topic,))
        while rows := await cursor.fetchmany(BATCH):
            sent = []
            for row in rows:
                record = encode(from_json_dict(row, topic=topic))
                sent.append(
                    await producer.send(
                        physical, record.value, key=record.key, headers=record.headers
                    )
                )
            await asyncio.gather(*sent)
            count += len(rows)
    return count
