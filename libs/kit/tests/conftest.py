"""Kit test fixtures: a migrated schema and engine on the real Postgres, and fresh topics on
the real broker (both provided by the openlines pytest plugin)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit.eventstore import EventStore
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.producer import create_producer
from openlines.kit.testing.service import migrated_engine

from .helpers import Kit


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, pool_size=12) as eng:
        yield eng


@pytest.fixture
def store(db_schema: str) -> EventStore:
    return EventStore(db_schema, producer="test")


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., Awaitable[str]]:
    async def make(prefix: str = "openlines.test", partitions: int = 3) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        await ensure_topics(kafka_bootstrap, [name, f"{name}.dlq"], partitions=partitions)
        return name

    return make


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer (for relays and dead letters), stopped after the test."""
    p = create_producer(kafka_bootstrap, client_id="kit-test")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def kit(
    engine: AsyncEngine,
    store: EventStore,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    db_schema: str,
    database_url: str,
    new_topic: Callable[..., Awaitable[str]],
) -> Kit:
    return Kit(engine, store, producer, kafka_bootstrap, db_schema, database_url, new_topic)
