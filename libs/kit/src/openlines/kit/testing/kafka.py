"""Reading topics back in tests: what a service really published, from the beginning."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from openlines.events.codec import decode
from openlines.events.envelope import Envelope, EventPayload

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@asynccontextmanager
async def _from_beginning(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata for a topic we do not subscribe to
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert parts, f"topic {topic} has no partitions"
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        yield consumer
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Record]], bool] | int,
    timeout: float = 30.0,
    linger: float = 0.0,
) -> list[Record]:
    """Every record of `topic` from the beginning, read until `done(records)` holds (or until
    `done` records arrived), then for `linger` more seconds so late duplicates show too."""
    enough = (lambda records: len(records) >= done) if isinstance(done, int) else done
    out: list[Record] = []
    async with _from_beginning(bootstrap, topic) as consumer:
        deadline = time.monotonic() + timeout
        while not enough(out):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {len(out)} records of {topic}")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(records)
        linger_until = time.monotonic() + linger
        while time.monotonic() < linger_until:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out.extend(records)
    return out


@dataclass
class TopicReader:
    """Collects every envelope of a (physical) topic from its beginning, in the background."""

    bootstrap: str
    topic: str
    logical: str  # the catalog name, for decoding
    seen: list[Envelope] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TopicReader]:
        async with _from_beginning(self.bootstrap, self.topic) as consumer:
            task = asyncio.create_task(self._pump(consumer))
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            records = [rec for recs in batch.values() for rec in recs]
            if records:
                async with self._changed:
                    self.seen.extend(
                        decode(rec.value, rec.headers, topic=self.logical) for rec in records
                    )
                    self._changed.notify_all()

    def of(self, kind: type[EventPayload]) -> list[Any]:
        return [env.payload for env in self.seen if isinstance(env.payload, kind)]

    def types(self) -> list[str]:
        return [env.type for env in self.seen]

    async def wait_for(
        self, done: Callable[[TopicReader], bool], what: str, timeout: float = 30.0
    ) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: done(self))
        except TimeoutError:
            seen = [(e.type, e.payload.model_dump(mode="json")) for e in self.seen]
            raise AssertionError(f"timed out waiting for {what}; seen: {seen}") from None
