"""The outbox relay: publishes committed outbox rows to Kafka in commit order, at least once.

One relay per schema is active at a time (a session advisory lock elects it), so replicas of a
service can all run one and stand by. It wakes on NOTIFY from writers and polls as a fallback.
A crash between publishing and deleting a batch republishes it: consumers dedupe by event_id.

A record that can never be published (bigger than a Kafka record may be, or refused by the
broker as a record) must not stop every record behind it: it moves to the dead_letters table,
with an error log line and openlines_relay_dead_letters_total, and the relay goes on in order.
`openlines deadletters` lists and re-drives them. Everything else (a broker that is down, a
timeout) is retried, and readiness turns red once the relay holds work without progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from sqlalchemy import Row, bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit import metrics
from openlines.kit.db.retry import is_infrastructure_error
from openlines.kit.db.tables import dead_letters, outbox
from openlines.kit.log import get_logger
from openlines.kit.outbox import notify_channel, relay_lock_key

log = get_logger(__name__)


# Built once: per-call construction costs more CPU than executing them.
_PENDING = (
    select(outbox.c.position, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
    .order_by(outbox.c.position)
    .limit(bindparam("limit"))
)
_PUBLISHED = delete(outbox).where(outbox.c.position.in_(bindparam("positions", expanding=True)))
_BACKLOG = select(func.count()).select_from(outbox)
_DEAD_LETTER = insert(dead_letters).from_select(
    ["position", "topic", "key", "value", "headers", "enqueued_at", "error"],
    select(
        outbox.c.position,
        outbox.c.topic,
        outbox.c.key,
        outbox.c.value,
        outbox.c.headers,
        outbox.c.created_at,
        bindparam("error"),
    ).where(outbox.c.position == bindparam("position")),
)

# Errors about the record itself, not the cluster: sending it again can never succeed.
# (Authorisation and unknown-topic errors are about the deployment: retried, readiness red.)
UNPUBLISHABLE: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)

Unpublishable = tuple[Row[Any, Any, Any, Any, Any], Exception]


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        *,
        schema: str,
        dsn: str,
        batch_size: int = 500,
        poll_interval: float = 2.0,  # a fallback: NOTIFY wakes the relay on every commit
    ) -> None:
        # Autocommit: each read and delete is one statement, no BEGIN/COMMIT round trips.
        # Deleting exactly the published positions needs no transaction around the round.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._transactional = engine  # moving rows to dead_letters is one transaction
        self.producer = producer
        self.schema = schema
        self.dsn = dsn
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.is_leader = False
        self.last_round_at = time.monotonic()
        self.published = 0
        self.dead_lettered = 0
        # Records visible in the outbox at the last look, and when a round last completed:
        # together they tell a stalled relay (work, no progress) from an idle one.
        self.backlog = 0
        self.last_progress_at = time.monotonic()
        self._wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; a round in progress finishes before returning."""
        while not stop.is_set():
            try:
                await self._run_as_leader(stop)
            except Exception as exc:
                # The engine raises SQLAlchemy's wrappers (a Postgres restart): wait for it.
                if not is_infrastructure_error(exc):
                    raise
                self.is_leader = False
                log.warning("relay lost its database connection", error=str(exc))
                await _sleep_or_stop(stop, 1.0)

    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            while not stop.is_set():
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (relay_lock_key(self.schema),)
                )
                row = await cur.fetchone()
                if row and row[0]:
                    break
                self.last_round_at = time.monotonic()
                await _sleep_or_stop(stop, 2.0)
            if stop.is_set():
                return
            self.is_leader = True
            self.last_progress_at = time.monotonic()
            log.info("relay is the leader", schema=self.schema)
            await conn.execute(f'LISTEN "{notify_channel(self.schema)}"')
            listener = asyncio.create_task(self._listen(conn))
            try:
                while not stop.is_set():
                    if listener.done():
                        listener.result()  # surfaces a dropped connection
                    try:
                        count = await self.publish_pending()
                    except KafkaError as exc:
                        # Rows stay in the outbox; the next round publishes them again.
                        log.warning("relay publish failed, will retry", error=repr(exc))
                        # The loop is alive (liveness); stalled() reports the lack of progress.
                        self.last_round_at = time.monotonic()
                        await _sleep_or_stop(stop, 1.0)
                        continue
                    self.last_round_at = self.last_progress_at = time.monotonic()
                    if count < self.batch_size:
                        await self._wait_for_work(stop)
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                    await listener
                self.is_leader = False

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for _ in conn.notifies():
            self._wakeup.set()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        stop_wait = asyncio.create_task(stop.wait())
        wake_wait = asyncio.create_task(self._wakeup.wait())
        await asyncio.wait(
            {stop_wait, wake_wait}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        stop_wait.cancel()
        wake_wait.cancel()
        self._wakeup.clear()

    def stalled(self, after_seconds: float) -> bool:
        """The leader holds work but has completed no round for `after_seconds` (readiness)."""
        return (
            self.is_leader
            and self.backlog > 0
            and time.monotonic() - self.last_progress_at > after_seconds
        )

    async def publish_pending(self) -> int:
        """Publish the visible rows in position order, then delete exactly those rows (a row
        committed meanwhile with a lower position is left for the next round, not lost).
        Rows that can never be published move to dead_letters in the same round.
        Returns how many rows were published or dead-lettered."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_PENDING, {"limit": self.batch_size})).all()
            # Exact without a count unless a full batch suggests more is waiting. Set before
            # sending, so that the gauge shows the work while a round keeps failing.
            self.backlog = (
                len(rows)
                if len(rows) < self.batch_size
                else (await conn.execute(_BACKLOG)).scalar_one()
            )
        metrics.RELAY_BACKLOG.labels(self.schema).set(self.backlog)
        if not rows:
            return 0
        try:
            unpublishable = await self.send(rows)
        except Exception:
            metrics.RELAY_ERRORS.labels(self.schema).inc()
            raise
        positions = [row.position for row in rows]
        if unpublishable:
            await self._dead_letter(unpublishable, positions)
        else:
            async with self.engine.connect() as conn:
                await conn.execute(_PUBLISHED, {"positions": positions})
        published = len(rows) - len(unpublishable)
        self.published += published
        self.backlog = max(self.backlog - len(rows), 0)
        metrics.RELAY_PUBLISHED.labels(self.schema).inc(published)
        metrics.RELAY_BACKLOG.labels(self.schema).set(self.backlog)
        return len(rows)

    async def send(self, rows: Sequence[Row[Any, Any, Any, Any, Any]]) -> list[Unpublishable]:
        """Send rows in order and wait for every ack (acks=all). Returns the rows that can never
        be published, with the reason; raises on any other failure (the round is retried)."""
        unpublishable: list[Unpublishable] = []
        sent = []
        for row in rows:
            try:
                future = await self.producer.send(
                    row.topic,
                    row.value,
                    key=row.key,
                    headers=[(k, v.encode()) for k, v in row.headers.items()],
                )
            except UNPUBLISHABLE as exc:  # the producer's own size check, before any I/O
                unpublishable.append((row, exc))
                continue
            sent.append((row, future))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        retry: BaseException | None = None
        for (row, _), result in zip(sent, results, strict=True):
            if isinstance(result, UNPUBLISHABLE):
                unpublishable.append((row, result))
            elif isinstance(result, BaseException) and retry is None:
                retry = result
        if retry is not None:
            raise retry
        return sorted(unpublishable, key=lambda item: item[0].position)

    async def _dead_letter(self, unpublishable: list[Unpublishable], positions: list[int]) -> None:
        # One transaction: a crash cannot both keep the row in the outbox and dead-letter it.
        async with self._transactional.begin() as conn:
            await conn.execute(
                _DEAD_LETTER,
                [{"position": row.position, "error": repr(exc)} for row, exc in unpublishable],
            )
            await conn.execute(_PUBLISHED, {"positions": positions})
        for row, exc in unpublishable:
            log.error(
                "relay dead-lettered a record it can never publish; see openlines deadletters",
                schema=self.schema,
                topic=row.topic,
                position=row.position,
                key=row.key.decode(errors="replace"),
                type=row.headers.get("type"),
                event_id=row.headers.get("event_id"),
                size=len(row.value),
                error=repr(exc),
            )
        self.dead_lettered += len(unpublishable)
        metrics.RELAY_DEAD_LETTERS.labels(self.schema).inc(len(unpublishable))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
