"""Reading topics back in tests: what a service really published, from the beginning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from openlines.events.codec import decode
from openlines.events.envelope import Envelope, EventPayload
from openlines.kit.testing.waiting import eventually

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
    to_end: bool = False,
) -> list[Record]:
    """Every record of `topic` from the beginning, read until `done(records)` holds (or until
    `done` records arrived). With `to_end`, then on to the end of every partition as it is at
    that moment, so duplicates acknowledged so far show too: the end offsets are the marker,
    no waiting and hoping. (Whoever may still publish must have stopped for "no duplicate" to
    mean anything; callers wait for that first, e.g. an empty outbox.)"""
    enough = (lambda records: len(records) >= done) if isinstance(done, int) else done
    out: list[Record] = []

    async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        return any([await consumer.position(tp) < end for tp, end in ends.items()])

    try:
        async with _from_beginning(bootstrap, topic) as consumer, asyncio.timeout(timeout):
            while not enough(out):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(records)
            if to_end:
                ends = await consumer.end_offsets(list(consumer.assignment()))
                while await behind(consumer, ends):
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        out.extend(records)
    except TimeoutError:
        raise TimeoutError(f"gave up after {len(out)} records of {topic}") from None
    return out


@dataclass
class TopicReader:
    """Collects every envelope of a (physical) topic from its beginning, in the background."""

    bootstrap: str
    topic: str
    logical: str  # the catalog name, for decoding
    seen: list[Envelope] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _consumer: AIOKafkaConsumer | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TopicReader]:
        async with _from_beginning(self.bootstrap, self.topic) as consumer:
            self._consumer = consumer
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

    async def read_to_end(self, timeout: float = 30.0) -> None:
        """Wait until everything on the topic now has been read: the end offsets are the
        marker. (Whoever publishes must be done for this to mean "nothing more".)"""
        consumer = self._consumer
        assert consumer is not None, "the reader is not running"
        ends = await consumer.end_offsets(list(consumer.assignment()))

        async def at_end() -> bool:
            return all([await consumer.position(tp) >= end for tp, end in ends.items()])

        await eventually(at_end, timeout=timeout, what=f"the end of {self.topic}")
        async with self._changed:
            pass  # the pump appends a batch under this lock: the last one is in `seen` now

    def forget(self) -> None:
        """Set aside what was read so far: a reader shared by the tests of a module then shows
        each test only what comes after (call it once `read_to_end` says nothing is pending)."""
        self.seen.clear()

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
