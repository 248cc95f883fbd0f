"""Shared test helpers: the infrastructure a kit test works with, read a topic to its end, a
tiny event payload, a catch-all consumer, a counting projection and a runner to drive it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.catalog import DialogRenamed
from openlines.events.envelope import Envelope
from openlines.kit.consumer import ConsumerRunner
from openlines.kit.db.engine import libpq_dsn
from openlines.kit.eventstore import EventStore
from openlines.kit.relay import OutboxRelay
from openlines.kit.subscription import Handler, Subscription
from openlines.kit.testing.infra import consumer_options
from openlines.kit.testing.kafka import read_topic


@dataclass(frozen=True)
class Kit:
    """A migrated schema's engine and event store, the broker, a started producer and a maker
    of fresh topics: what the relay and consumer tests work with (the `kit` fixture)."""

    engine: AsyncEngine
    store: EventStore
    producer: AIOKafkaProducer
    bootstrap: str
    schema: str
    database_url: str
    new_topic: Callable[..., Awaitable[str]]

    def relay(
        self,
        producer: AIOKafkaProducer | None = None,
        cls: type[OutboxRelay] = OutboxRelay,
        **options: Any,
    ) -> OutboxRelay:
        """A relay over this schema's outbox, publishing with `producer` (the kit's own if none)."""
        return cls(
            self.engine,
            producer or self.producer,
            schema=self.schema,
            dsn=libpq_dsn(self.database_url),
            **options,
        )

    def runner(
        self, sub: Subscription, cls: type[ConsumerRunner] = ConsumerRunner
    ) -> ConsumerRunner:
        """A consumer of `sub` that joins its group with the session's fast-join options."""
        return cls(
            sub,
            engine=self.engine,
            bootstrap=self.bootstrap,
            dlq_producer=self.producer,
            consumer_options=consumer_options(self.bootstrap),
        )


def catch_all(name: str, topic: str, handler: Handler, **options: Any) -> Subscription:
    """A subscription whose one handler takes every event of the topic."""
    sub: Subscription = Subscription(name, [topic], **options)
    sub.on_any(handler)
    return sub


def renamed(i: int, stream: str = "d") -> DialogRenamed:
    return DialogRenamed(
        dialog_id=uuid.uuid5(uuid.NAMESPACE_URL, stream), title=f"title {i}", actor_id="op"
    )


async def read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the beginning until `expected` records arrived, then on to the end of the
    topic as it is then, so duplicates past `expected` are seen too."""
    return await read_topic(bootstrap, topic, expected, timeout=timeout, to_end=True)


async def make_counter(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE effects (title text PRIMARY KEY, times int NOT NULL)")
        )


async def count_effect(conn: AsyncConnection, env: Envelope) -> None:
    # Deliberately NOT idempotent on its own: double application would show as times = 2.
    await conn.execute(
        text(
            "INSERT INTO effects VALUES (:t, 1) ON CONFLICT (title) "
            "DO UPDATE SET times = effects.times + 1"
        ),
        {"t": f"{env.stream_id}/{env.payload.title}"},
    )


async def read_effects(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT title, times FROM effects"))
        return {r.title: r.times for r in rows}


async def applied_once_each(engine: AsyncEngine) -> set[str]:
    """The records that took effect through `count_effect`, each checked to have done so
    exactly once."""
    effects = await read_effects(engine)
    repeated = {title: times for title, times in effects.items() if times != 1}
    assert not repeated, f"applied more than once: {repeated}"
    return set(effects)


async def run_until(
    runner: ConsumerRunner, done: Callable[[], Awaitable[bool]], timeout: float = 30.0
) -> None:
    """Run `runner` until `done` holds (re-raising what ended it early), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def has_applied(runner: ConsumerRunner, n: int) -> Callable[[], Awaitable[bool]]:
    """Done once `n` records are applied and nothing is left on the runner's partitions."""

    async def check() -> bool:
        return runner.status.applied >= n and runner.status.lag == 0

    return check
