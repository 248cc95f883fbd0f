"""The outbox relay: publishes committed outbox rows to Kafka in commit order, at least once.

One relay per schema is active at a time (a session advisory lock elects it), so replicas of a
service can all run one and stand by. It wakes on NOTIFY from writers and polls as a fallback.
A crash between publishing and deleting a batch republishes it: consumers dedupe by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import Row, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit import metrics
from openlines.kit.consumer import is_infrastructure_error
from openlines.kit.db.tables import outbox
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
        self.producer = producer
        self.schema = schema
        self.dsn = dsn
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.is_leader = False
        self.last_round_at = time.monotonic()
        self.published = 0
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
                        await _sleep_or_stop(stop, 1.0)
                        continue
                    self.last_round_at = time.monotonic()
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

    async def publish_pending(self) -> int:
        """Publish the visible rows in position order, then delete exactly those rows (a row
        committed meanwhile with a lower position is left for the next round, not lost).
        Returns how many rows were published."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_PENDING, {"limit": self.batch_size})).all()
        if not rows:
            metrics.RELAY_BACKLOG.labels(self.schema).set(0)
            return 0
        try:
            await self.send(rows)
        except Exception:
            metrics.RELAY_ERRORS.labels(self.schema).inc()
            raise
        async with self.engine.connect() as conn:
            await conn.execute(_PUBLISHED, {"positions": [row.position for row in rows]})
            # Counting is only worth it when a full batch suggests more is waiting.
            backlog = (
                (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
                if len(rows) == self.batch_size
                else 0
            )
        self.published += len(rows)
        metrics.RELAY_PUBLISHED.labels(self.schema).inc(len(rows))
        metrics.RELAY_BACKLOG.labels(self.schema).set(backlog)
        return len(rows)

    async def send(self, rows: Sequence[Row[Any, Any, Any, Any, Any]]) -> None:
        """Send rows in order and wait for every ack (acks=all)."""
        futures = [
            await self.producer.send(
                row.topic,
                row.value,
                key=row.key,
                headers=[(k, v.encode()) for k, v in row.headers.items()],
            )
            for row in rows
        ]
        await asyncio.gather(*futures)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
