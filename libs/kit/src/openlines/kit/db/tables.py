"""The kit's tables, present in every service schema (see kit_migrations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

# The event store: the source of truth for the service's aggregates.
events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("topic", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", UUID(as_uuid=True)),
    Column("causation_id", UUID(as_uuid=True)),
    Column("producer", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="events_stream_version_key"),
)


def _kafka_record() -> list[Column[Any]]:
    """A Kafka record as the relay sends it: what the outbox holds and a dead letter keeps whole."""
    return [
        Column("topic", Text, nullable=False),
        Column("key", LargeBinary, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
    ]


# Records committed with the business change and published by the relay, then deleted.
outbox = Table(
    "outbox",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=True),
    *_kafka_record(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# What each consumer has applied, written in the same transaction as the effect.
inbox = Table(
    "inbox",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("outcome", Text, nullable=False, server_default="applied"),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Outbox records that can never be published (too large for a Kafka record, or refused as a
# record by the broker): moved here by the relay so later records keep flowing. Listed and
# re-driven with `openlines deadletters` (kit migration 0003).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("position", BigInteger, nullable=False),
    *_kafka_record(),
    Column("error", Text, nullable=False),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

timers = Table(
    "timers",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("dead", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("name", "key", name="timers_name_key_key"),
    Index("timers_due_idx", "due_at", postgresql_where="NOT dead"),
)

# The latest snapshot of a long stream's aggregate (kit migration 0004, `streamwriter`): the
# state as JSON at `version`, whose event was `event_id`. Only ever a cache of the events: a
# missing, outdated or unreadable snapshot means the stream is replayed from the start.
snapshots = Table(
    "snapshots",
    metadata,
    Column("stream_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("state_version", Integer, nullable=False),
    Column("state", JSONB, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
