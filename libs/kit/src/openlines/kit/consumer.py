"""Idempotent consumers: apply a handler and record it in ONE transaction, then commit offsets.

The Kafka side is a FastStream batch subscriber (manual commit) on the service's broker: it
polls, and hands each batch to `ConsumerRunner.on_batch`. A batch is applied optimistically in
one transaction: the inbox insert (`INSERT .. ON CONFLICT DO NOTHING RETURNING`) picks the
records not applied yet and the subscription's handlers run for those. If a handler fails, that
transaction is rolled back and the batch is re-applied record by record inside savepoints, with
bounded retries; a record that still fails is published to `<topic>.dlq` with its origin in the
headers and recorded as dead-lettered, so the partition keeps moving. Database or broker
outages are not poison: the batch is retried until the infrastructure is back, and readiness
reports it. Only then are the offsets committed.

FastStream's retry and exception middlewares act per message and either drop or redeliver it;
none keeps a batch in hand across an outage nor dead-letters one record of it, so that part
stays here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.trace import SpanKind
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.codec import DecodeError, decode
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.topics import TOPICS, dlq_topic
from openlines.kit import metrics
from openlines.kit.db.retry import is_infrastructure_error, is_retryable, is_transaction_conflict
from openlines.kit.kafka.broker import batch_of, create_broker
from openlines.kit.log import get_logger
from openlines.kit.subscription import AfterCommit, Handler, Subscription
from openlines.kit.telemetry import context_from_kafka, tracer
from openlines.kit.topics import TopicNames

__all__ = [
    "AfterCommit",
    "ConsumerRunner",
    "ConsumerStatus",
    "Handler",
    "Subscription",
    "is_infrastructure_error",
    "is_retryable",
    "is_transaction_conflict",
]

log = get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[Any, Any]"

# An idle subscriber polls for this long, then FastStream sleeps as long again: one poll per
# 200 ms, as the kit's own loop did (getmany(timeout_ms=200)).
POLL_MS = 100

_CLAIM = text(
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(:ids) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))
_CLAIM_ONE = text(
    "INSERT INTO inbox (consumer, event_id, outcome) VALUES (:consumer, :id, :outcome) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


class ConsumerOptions(TypedDict, total=False):
    """The group and fetch settings a service takes from KitSettings."""

    session_timeout_ms: int
    heartbeat_interval_ms: int
    rebalance_timeout_ms: int
    max_poll_interval_ms: int
    fetch_max_wait_ms: int


@dataclass
class ConsumerStatus:
    started: bool = False
    assigned: set[TopicPartition] = field(default_factory=set)
    last_poll_at: float = field(default_factory=time.monotonic)
    infra_error: str | None = None
    applied: int = 0
    lag: int = 0
    # When the batch in hand arrived (None between batches).
    batch_since: float | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What the subscriber's decoder hands the kit: the records as aiokafka returned them
    (FastStream's default decoder would parse every value as JSON, a second decode the kit's
    codec does anyway) and the message to acknowledge."""

    message: KafkaMessage
    records: tuple[Record, ...]


def _batch_of(message: KafkaMessage) -> Batch:
    raw = message.raw_message
    return Batch(message, raw if isinstance(raw, tuple) else (raw,))


class ConsumerRunner:
    def __init__(
        self,
        subscription: Subscription,
        *,
        engine: AsyncEngine | None = None,
        bootstrap: str = "",
        dlq_producer: AIOKafkaProducer | None = None,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        topics: TopicNames | None = None,
        consumer_options: ConsumerOptions | None = None,
    ) -> None:
        self.sub = subscription
        self.topics = topics or TopicNames()
        self._engine = engine
        self.bootstrap = bootstrap
        self._dlq = dlq_producer
        self.status = ConsumerStatus()
        self._auto_offset_reset = auto_offset_reset
        self._consumer_options: ConsumerOptions = consumer_options or {}
        self._stop = asyncio.Event()
        self.subscriber: Any = None
        # An unexpected error in a batch: the runner stops its service (better a restart than
        # a silent stall), and `run` raises it.
        self.crashed: BaseException | None = None
        # Records of the batch in hand already sent to the DLQ: neither the careful re-run nor
        # a retry of the whole batch (after an outage or a lost deadlock) sends them again.
        self._dead_in_batch: set[tuple[str, int, int]] = set()
        # (topic, envelope) applied by the transaction in progress; counted once it commits.
        self._applied_in_batch: list[tuple[str, Envelope[Any]]] = []

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "consumer not bound to a database"
        return self._engine

    @property
    def dlq(self) -> AIOKafkaProducer:
        assert self._dlq is not None, "consumer not bound to a producer"
        return self._dlq

    def bind(self, engine: AsyncEngine, dlq_producer: AIOKafkaProducer) -> None:
        """The database and DLQ producer, once the runtime has started them."""
        self._engine = engine
        self._dlq = dlq_producer

    # -- FastStream ------------------------------------------------------------------------

    def attach(self, broker: KafkaBroker, stop: asyncio.Event) -> None:
        """Declare this subscription as a batch subscriber (manual commit) of `broker`."""
        self._stop = stop
        subscriber = broker.subscriber(
            *(self.topics.physical(t) for t in self.sub.topics),
            batch=True,
            # The namespace keeps groups of suites sharing one broker apart (empty in prod).
            group_id=self.topics.physical(self.sub.name),
            auto_offset_reset=self._auto_offset_reset,
            max_records=self.sub.batch_size,
            max_poll_records=self.sub.batch_size,
            batch_timeout_ms=POLL_MS,
            ack_policy=AckPolicy.MANUAL,
            decoder=_batch_of,
            title=self.sub.name,
            description=f"Inbox consumer `{self.sub.name}`.",
            **self._consumer_options,
        )
        subscriber(self._entry())
        self.subscriber = subscriber

    def _entry(self) -> Any:
        async def consume(batch: Batch) -> None:
            await self.on_batch(batch)

        # What AsyncAPI shows as the subscriber's messages: the registered event types.
        # (FastStream reads the handler's annotation; the kit's decoder supplies the Batch.)
        kinds = self.message_types()
        if kinds:
            consume.__annotations__ = {"batch": batch_of(kinds), "return": None}
        consume.__name__ = self.sub.name.replace(".", "_").replace("-", "_")
        return consume

    def message_types(self) -> tuple[type[EventPayload], ...]:
        """The event types this subscription takes (a catch-all: every type of its topics)."""
        if not self.sub.takes_everything:
            return self.sub.event_types
        kinds: dict[type[EventPayload], None] = {}
        for topic in self.sub.topics:
            known = TOPICS.get(topic)
            kinds.update(dict.fromkeys(known.event_types if known else ()))
        return tuple(kinds)

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume on a broker of its own until `stop` is set; the batch in hand is applied
        and committed first. (A service's runners share one broker: see ServiceRuntime.)"""
        broker = create_broker(self.bootstrap, client_id=self.sub.name)
        self.attach(broker, stop)
        await broker.start()
        watcher = asyncio.create_task(self.watch(stop))
        try:
            await stop.wait()
        finally:
            await broker.stop()
            self.status.started = False
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self.crashed is not None:
            raise self.crashed

    async def watch(self, stop: asyncio.Event) -> None:
        """Poll-side status between batches: FastStream calls the handler only when records
        arrive, so assignment, lag and liveness of an idle subscriber are read from its
        consumer here."""
        while not stop.is_set():
            await self.observe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_MS * 2 / 1000)
        self.status.started = False

    async def observe(self) -> None:
        subscriber = self.subscriber
        consumer: AIOKafkaConsumer | None = getattr(subscriber, "consumer", None)
        polling = (
            consumer is not None
            and subscriber.running
            and all(not task.done() for task in subscriber.tasks)
        )
        self.status.started = polling
        if not polling or self.status.batch_since is not None:
            return  # a batch in hand refreshes the status itself when it is done
        assert consumer is not None
        self.status.last_poll_at = time.monotonic()
        self.status.assigned = set(consumer.assignment())
        with contextlib.suppress(Exception):  # a rebalance in progress: next round
            await self._update_lag(consumer)

    def is_ready(self, stale_after: float = 30.0) -> bool:
        fresh = time.monotonic() - self.status.last_poll_at < stale_after
        return self.status.started and fresh and self.status.infra_error is None

    def is_alive(self, stale_after: float = 120.0) -> bool:
        return time.monotonic() - self.status.last_poll_at < stale_after

    # -- batches ---------------------------------------------------------------------------

    async def on_batch(self, batch: Batch) -> None:
        """One batch from the subscriber: applied, then its offsets committed. When it is not
        applied (shutting down during an outage, an unexpected error), the consumer is rewound
        to its first records, so no later commit goes past them."""
        message = batch.message
        consumer: AIOKafkaConsumer = message.consumer
        self.status.batch_since = time.monotonic()
        try:
            if self.crashed is not None or not await self._process_with_recovery(batch):
                await message.nack()
                return
            offsets: dict[TopicPartition, int] = {}
            for rec in batch.records:
                offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            try:
                await self.commit_offsets(message, offsets)
            except CommitFailedError as exc:
                # A rebalance moved the partition: whoever gets it re-reads these records and
                # the inbox turns them into no-ops.
                log.warning(
                    "offset commit lost to a rebalance", consumer=self.sub.name, error=repr(exc)
                )
        except Exception as exc:
            log.exception("consumer crashed; stopping the service", consumer=self.sub.name)
            self.crashed = exc
            with contextlib.suppress(Exception):
                await message.nack()
            self._stop.set()
        finally:
            self.status.batch_since = None
            self.status.last_poll_at = time.monotonic()
            self.status.assigned = set(consumer.assignment())
            with contextlib.suppress(Exception):
                await self._update_lag(consumer)

    async def _process_with_recovery(self, batch: Batch) -> bool:
        """True once the batch is applied; False when shutting down during an outage (the
        batch is left uncommitted and redelivered later)."""
        delay = 0.2
        self._dead_in_batch.clear()
        while True:
            try:
                await self.process_batch(batch.records)
                self.status.infra_error = None
                return True
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
                if self._stop.is_set():
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self.status.last_poll_at = time.monotonic()

    async def commit_offsets(
        self, message: KafkaMessage, offsets: dict[TopicPartition, int]
    ) -> None:
        # Manual commit (AckPolicy.MANUAL) of exactly the batch's partitions: FastStream's
        # `message.ack()` would commit every assigned partition's position on each batch.
        consumer: AIOKafkaConsumer = message.consumer
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            metrics.CONSUMER_POSITION.labels(self.sub.name, tp.topic, str(tp.partition)).set(offset)

    async def process_batch(self, records: Sequence[Record]) -> None:
        self._applied_in_batch = []
        started = time.perf_counter()
        decoded: list[tuple[Record, Envelope | DecodeError]] = []
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
        self, decoded: list[tuple[Record, Envelope | DecodeError]]
    ) -> list[tuple[Record, Envelope | DecodeError]]:
        accepts = self.sub.accepts
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
        decoded: list[tuple[Record, Envelope | DecodeError]],
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
        decoded: list[tuple[Record, Envelope | DecodeError]],
    ) -> None:
        for rec, item in decoded:
            if isinstance(item, DecodeError):
                await self._dead_letter(rec, item, attempts=1)
                continue
            await self._apply_one(conn, rec, item)

    async def _apply_one(self, conn: AsyncConnection, rec: Record, env: Envelope) -> None:
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
                    **self._log_place(rec),
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

    async def _handle(self, conn: AsyncConnection, rec: Record, env: Envelope) -> None:
        # FastStream's telemetry middleware opens one span per batch, in a new trace linked to
        # the records' contexts; each record's own span continues its writer's trace here.
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
            await self.sub.dispatch(conn, env)

    async def _dead_letter(self, rec: Record, error: BaseException, *, attempts: int) -> None:
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
            "record dead-lettered", **self._log_place(rec), attempts=attempts, error=repr(error)
        )

    def _log_place(self, rec: Record) -> dict[str, object]:
        """Where a record stands, for the log lines about it."""
        return {
            "consumer": self.sub.name,
            "topic": rec.topic,
            "partition": rec.partition,
            "offset": rec.offset,
        }

    def _note_applied(self, rec: Record, env: Envelope) -> None:
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
