"""Idempotent consumers: apply a handler and record it in ONE transaction, then commit offsets.

A batch from `getmany` is applied optimistically in one transaction: the inbox insert
(`INSERT .. ON CONFLICT DO NOTHING RETURNING`) picks the records not applied yet and the
handler runs for those. If a handler fails, that transaction is rolled back and the batch is
re-applied record by record inside savepoints, with bounded retries; a record that still fails
is published to `<topic>.dlq` with its origin in the headers and recorded as dead-lettered, so
the partition keeps moving. Database or broker outages are not poison: the batch is rewound and
retried until the infrastructure is back, and readiness reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from opentelemetry.trace import SpanKind
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import DecodeError, decode
from openlines.events.envelope import Envelope
from openlines.events.topics import dlq_topic
from openlines.kit import metrics
from openlines.kit.db.retry import is_infrastructure_error, is_retryable, is_transaction_conflict
from openlines.kit.log import get_logger
from openlines.kit.telemetry import context_from_kafka, tracer
from openlines.kit.topics import TopicNames

log = get_logger(__name__)

Handler = Callable[[AsyncConnection, Envelope], Awaitable[None]]
Accepts = Callable[[Envelope], bool]
AfterCommit = Callable[[list[Envelope]], Awaitable[None]]

_CLAIM = text(
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(:ids) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))
_CLAIM_ONE = text(
    "INSERT INTO inbox (consumer, event_id, outcome) VALUES (:consumer, :id, :outcome) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


@dataclass
class Subscription:
    """A named consumer: its group id, inbox key and metric label."""

    name: str
    topics: Sequence[str]
    handler: Handler
    batch_size: int = 100
    max_attempts: int = 5
    retry_backoff: float = 0.05
    # Called with the envelopes a batch applied, once its transaction has committed: for side
    # effects that must only reflect durable state (e.g. pushing to WebSockets). Best effort.
    after_commit: AfterCommit | None = None
    # Which decoded events the handler acts on. The others are acknowledged with the batch
    # without a transaction or an inbox row: a topic like dialogs carries many events that a
    # given subscriber ignores, and each would otherwise cost a database round trip or more.
    accepts: Accepts | None = None


@dataclass
class ConsumerStatus:
    started: bool = False
    assigned: set[TopicPartition] = field(default_factory=set)
    last_poll_at: float = field(default_factory=time.monotonic)
    infra_error: str | None = None
    applied: int = 0
    lag: int = 0


class ConsumerRunner:
    def __init__(
        self,
        subscription: Subscription,
        *,
        engine: AsyncEngine,
        bootstrap: str,
        dlq_producer: AIOKafkaProducer,
        auto_offset_reset: str = "earliest",
        topics: TopicNames | None = None,
        consumer_options: dict[str, int] | None = None,
    ) -> None:
        self.sub = subscription
        self.topics = topics or TopicNames()
        self.engine = engine
        self.bootstrap = bootstrap
        self.dlq = dlq_producer
        self.status = ConsumerStatus()
        self._auto_offset_reset = auto_offset_reset
        self._consumer_options = consumer_options or {}
        # Records of the batch in hand already sent to the DLQ: neither the careful re-run nor
        # a retry of the whole batch (after an outage or a lost deadlock) sends them again.
        self._dead_in_batch: set[tuple[str, int, int]] = set()
        # (topic, envelope) applied by the transaction in progress; counted once it commits.
        self._applied_in_batch: list[tuple[str, Envelope]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is applied and committed first."""
        consumer = AIOKafkaConsumer(
            *(self.topics.physical(t) for t in self.sub.topics),
            bootstrap_servers=self.bootstrap,
            # The namespace keeps groups of suites sharing one broker apart (empty in prod).
            group_id=self.topics.physical(self.sub.name),
            client_id=self.sub.name,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            max_poll_records=self.sub.batch_size,
            **self._consumer_options,
        )
        await consumer.start()
        self.status.started = True
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.sub.batch_size)
                self.status.last_poll_at = time.monotonic()
                self.status.assigned = set(consumer.assignment())
                if batch:
                    await self._process_with_recovery(consumer, batch, stop)
                await self._update_lag(consumer)
        finally:
            self.status.started = False
            with contextlib.suppress(Exception):
                await consumer.stop()

    def is_ready(self, stale_after: float = 30.0) -> bool:
        fresh = time.monotonic() - self.status.last_poll_at < stale_after
        return self.status.started and fresh and self.status.infra_error is None

    def is_alive(self, stale_after: float = 120.0) -> bool:
        return time.monotonic() - self.status.last_poll_at < stale_after

    # -- batches ---------------------------------------------------------------------------

    async def _process_with_recovery(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        stop: asyncio.Event,
    ) -> None:
        delay = 0.2
        self._dead_in_batch.clear()
        while True:
            try:
                await self.process_batch(batch)
                self.status.infra_error = None
                break

            except Exception as exc:
                if is_transaction_conflict(exc):
                    # Lost a deadlock (or serialization) to another transaction, which has
                    # gone on: go again at once; the service stays ready.
                    metrics.CONSUMER_CONFLICTS.labels(self.sub.name).inc()
                    log.info("batch lost a transaction conflict; retrying", consumer=self.sub.name)
                    continue
                if not is_infrastructure_error(exc):
                    raise
                self.status.infra_error = repr(exc)
                log.warning(
                    "consumer waiting for infrastructure", consumer=self.sub.name, error=repr(exc)
                )
                if stop.is_set():
                    # Shutting down: leave the batch uncommitted; it is redelivered later.
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self.status.last_poll_at = time.monotonic()
        try:
            await self.commit_offsets(
                consumer, {tp: recs[-1].offset + 1 for tp, recs in batch.items()}
            )
        except CommitFailedError as exc:
            # A rebalance moved the partition: whoever gets it re-reads these records and the
            # inbox turns them into no-ops.
            log.warning(
                "offset commit lost to a rebalance", consumer=self.sub.name, error=repr(exc)
            )

    async def commit_offsets(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            metrics.CONSUMER_POSITION.labels(self.sub.name, tp.topic, str(tp.partition)).set(offset)

    async def process_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> None:
        records = [rec for recs in batch.values() for rec in recs]
        self._applied_in_batch = []
        started = time.perf_counter()
        decoded: list[tuple[ConsumerRecord[Any, Any], Envelope | DecodeError]] = []
        for rec in records:
            try:
                logical = self.topics.logical(rec.topic)
                decoded.append((rec, decode(rec.value, rec.headers, topic=logical)))
            except DecodeError as exc:
                decoded.append((rec, exc))
        decoded = self._wanted(decoded)
        if not decoded:
            return
        try:
            async with self.engine.begin() as conn:
                await self._apply_fast(conn, decoded)
        except Exception as exc:
            if is_retryable(exc):
                raise  # the whole batch goes again; never a reason to dead-letter a record
            log.info(
                "batch failed, re-applying record by record",
                consumer=self.sub.name,
                error=repr(exc),
            )
            self._applied_in_batch = []
            async with self.engine.begin() as conn:
                await self._apply_careful(conn, decoded)
        metrics.CONSUMER_APPLY_SECONDS.labels(self.sub.name).observe(time.perf_counter() - started)
        for topic, _ in self._applied_in_batch:
            metrics.CONSUMER_APPLIED.labels(self.sub.name, topic).inc()
        self.status.applied += len(self._applied_in_batch)
        if self.sub.after_commit is not None and self._applied_in_batch:
            try:
                await self.sub.after_commit([env for _, env in self._applied_in_batch])
            except Exception:
                log.exception("after_commit hook failed", consumer=self.sub.name)

    def _wanted(
        self, decoded: list[tuple[ConsumerRecord[Any, Any], Envelope | DecodeError]]
    ) -> list[tuple[ConsumerRecord[Any, Any], Envelope | DecodeError]]:
        accepts = self.sub.accepts
        if accepts is None:
            return decoded
        wanted = []
        for rec, item in decoded:
            if isinstance(item, Envelope) and not accepts(item):
                metrics.CONSUMER_SKIPPED.labels(self.sub.name, rec.topic).inc()
            else:
                wanted.append((rec, item))  # undecodable records still go to the DLQ
        return wanted

    async def _apply_fast(
        self,
        conn: AsyncConnection,
        decoded: list[tuple[ConsumerRecord[Any, Any], Envelope | DecodeError]],
    ) -> None:
        ids = [item.event_id for _, item in decoded if isinstance(item, Envelope)]
        fresh: set[UUID] = set()
        if ids:
            result = await conn.execute(_CLAIM, {"consumer": self.sub.name, "ids": ids})
            fresh = {row[0] for row in result}
        for rec, item in decoded:
            if isinstance(item, DecodeError):
                await self._dead_letter(rec, item, attempts=1)
                continue
            if item.event_id not in fresh:
                metrics.CONSUMER_DUPLICATES.labels(self.sub.name, rec.topic).inc()
                continue
            fresh.discard(item.event_id)  # a duplicate later in the same batch is skipped
            await self._handle(conn, rec, item)
            self._note_applied(rec, item)

    async def _apply_careful(
        self,
        conn: AsyncConnection,
        decoded: list[tuple[ConsumerRecord[Any, Any], Envelope | DecodeError]],
    ) -> None:
        for rec, item in decoded:
            if isinstance(item, DecodeError):
                await self._dead_letter(rec, item, attempts=1)
                continue
            await self._apply_one(conn, rec, item)

    async def _apply_one(
        self, conn: AsyncConnection, rec: ConsumerRecord[Any, Any], env: Envelope
    ) -> None:
        last_error: Exception | None = None
        for attempt in range(1, self.sub.max_attempts + 1):
            try:
                async with conn.begin_nested():
                    claimed = await conn.execute(
                        _CLAIM_ONE,
                        {"consumer": self.sub.name, "id": env.event_id, "outcome": "applied"},
                    )
                    if claimed.first() is None:
                        metrics.CONSUMER_DUPLICATES.labels(self.sub.name, rec.topic).inc()
                        return
                    await self._handle(conn, rec, env)
                self._note_applied(rec, env)
                return
            except Exception as exc:
                if is_retryable(exc):
                    raise
                last_error = exc
                metrics.CONSUMER_RETRIES.labels(self.sub.name, rec.topic).inc()
                log.warning(
                    "handler failed",
                    consumer=self.sub.name,
                    topic=rec.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                    attempt=attempt,
                    event_id=str(env.event_id),
                    error=repr(exc),
                )
                if attempt < self.sub.max_attempts:
                    await asyncio.sleep(self.sub.retry_backoff * 2 ** (attempt - 1))
        assert last_error is not None
        await self._dead_letter(rec, last_error, attempts=self.sub.max_attempts)
        await conn.execute(
            _CLAIM_ONE, {"consumer": self.sub.name, "id": env.event_id, "outcome": "dlq"}
        )

    async def _handle(
        self, conn: AsyncConnection, rec: ConsumerRecord[Any, Any], env: Envelope
    ) -> None:
        with tracer().start_as_current_span(
            f"{rec.topic} process",
            context=context_from_kafka(rec.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": rec.topic,
                "messaging.consumer.group.name": self.sub.name,
                "openlines.event_type": env.type,
            },
        ):
            await self.sub.handler(conn, env)

    async def _dead_letter(
        self, rec: ConsumerRecord[Any, Any], error: BaseException, *, attempts: int
    ) -> None:
        origin = (rec.topic, rec.partition, rec.offset)
        if origin in self._dead_in_batch:
            return
        self._dead_in_batch.add(origin)
        headers = [
            *(rec.headers or ()),
            ("dlq.original_topic", rec.topic.encode()),
            ("dlq.original_partition", str(rec.partition).encode()),
            ("dlq.original_offset", str(rec.offset).encode()),
            ("dlq.consumer", self.sub.name.encode()),
            ("dlq.error", repr(error)[:2000].encode()),
            ("dlq.attempts", str(attempts).encode()),
        ]
        await self.dlq.send_and_wait(dlq_topic(rec.topic), rec.value, key=rec.key, headers=headers)
        metrics.CONSUMER_DLQ.labels(self.sub.name, rec.topic).inc()
        log.error(
            "record dead-lettered",
            consumer=self.sub.name,
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            attempts=attempts,
            error=repr(error),
        )

    def _note_applied(self, rec: ConsumerRecord[Any, Any], env: Envelope) -> None:
        self._applied_in_batch.append((rec.topic, env))

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        total = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            lag = max(high - await consumer.position(tp), 0)
            total += lag
            metrics.CONSUMER_LAG.labels(self.sub.name, tp.topic, str(tp.partition)).set(lag)
        self.status.lag = total
