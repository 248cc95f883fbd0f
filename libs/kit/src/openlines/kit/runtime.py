"""The composition every service shares: database, migrations, relay, consumers, timers, HTTP.

A service builds a `ServiceRuntime`, registers its subscriptions, timer handlers and routes, and
calls `serve(runtime)`. On SIGTERM/SIGINT the runtime stops taking HTTP requests, lets each loop
finish the batch in hand and commit, flushes the producer and closes the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.events.envelope import Envelope
from openlines.events.topics import TOPICS
from openlines.kit import eventloop
from openlines.kit.consumer import ConsumerRunner, Subscription
from openlines.kit.db.engine import create_engine, libpq_dsn
from openlines.kit.db.migrate import migrate
from openlines.kit.eventstore import EventStore
from openlines.kit.http.app import create_app
from openlines.kit.http.health import Health
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.broker import batch_of, create_broker
from openlines.kit.kafka.producer import create_producer, publish
from openlines.kit.log import get_logger, setup_logging
from openlines.kit.relay import OutboxRelay
from openlines.kit.settings import KitSettings
from openlines.kit.telemetry import setup_tracing
from openlines.kit.timers import Clock, TimerHandler, TimerWorker, wall_clock
from openlines.kit.topics import TopicNames

log = get_logger(__name__)


class ServiceRuntime:
    def __init__(
        self,
        settings: KitSettings,
        *,
        migrations: Path | None = None,
        uses_database: bool = True,
        runs_relay: bool = True,
        clock: Clock = wall_clock,
    ) -> None:
        self.settings = settings
        # What the timer worker calls "now" (tests inject a clock they move: no sleeping).
        self.clock = clock
        self.migrations = migrations
        self.uses_database = uses_database
        self.runs_relay = runs_relay and uses_database
        self.health = Health()
        self.stop = asyncio.Event()
        self.subscriptions: list[Subscription] = []
        self.timer_handlers: dict[str, TimerHandler] = {}
        self.consumers: list[ConsumerRunner] = []
        self.topics = TopicNames(settings.topic_namespace)
        # One FastStream broker per service: every subscription is a batch subscriber on it,
        # and the topics the service writes are declared as its publishers (AsyncAPI).
        self.broker = create_broker(
            settings.kafka_bootstrap,
            client_id=settings.service_name,
            graceful_timeout=settings.consumer_max_poll_interval_ms / 1000,
        )
        self.background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = []
        self._engine: AsyncEngine | None = None
        self._producer: AIOKafkaProducer | None = None
        self._route_builders: list[Callable[[web.Application], None]] = []
        self._startup: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._cleanup: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.event_store = EventStore(
            settings.schema_name, producer=settings.service_name, topics=self.topics
        )

    # -- registration ---------------------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        s = self.settings
        runner = ConsumerRunner(
            subscription,
            bootstrap=s.kafka_bootstrap,
            topics=self.topics,
            consumer_options={
                "session_timeout_ms": s.consumer_session_timeout_ms,
                "heartbeat_interval_ms": s.consumer_heartbeat_interval_ms,
                "rebalance_timeout_ms": s.consumer_rebalance_timeout_ms,
                "max_poll_interval_ms": s.consumer_max_poll_interval_ms,
                "fetch_max_wait_ms": s.consumer_fetch_max_wait_ms,
            },
        )
        runner.attach(self.broker, self.stop)
        self.subscriptions.append(subscription)
        self.consumers.append(runner)
        self.health.ready[f"consumer:{subscription.name}"] = runner.is_ready
        self.health.live[f"consumer:{subscription.name}"] = runner.is_alive

    def publishes(self, *topics: str) -> None:
        """Declare the topics this service writes (through the outbox relay or `publish`):
        publishers of its broker, so that the AsyncAPI document shows them. The bytes go
        through the kit's aiokafka producer (see kafka/broker.py)."""
        for topic in topics:
            known = TOPICS[topic]
            self.broker.publisher(
                self.topics.physical(topic),
                title=f"{self.settings.service_name}:{topic}",
                description=known.description,
                schema=batch_of(known.event_types),
            )

    def on_timer(self, name: str, handler: TimerHandler) -> None:
        self.timer_handlers[name] = handler

    def routes(self, builder: Callable[[web.Application], None]) -> None:
        self._route_builders.append(builder)

    def run_in_background(self, loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        self.background.append(loop)

    def on_startup(self, hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._startup.append(hook)

    def on_cleanup(self, hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._cleanup.append(hook)

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "database not started"
        return self._engine

    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Publish straight to Kafka and wait for the ack (stateless services such as ingest;
        stateful ones write through the event store or outbox instead)."""
        await publish(self.producer, self.topics.physical(topic), envelope)

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "producer not started"
        return self._producer

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> web.AppRunner:
        s = self.settings
        setup_logging(s.service_name, s.log_level, s.log_json)
        setup_tracing(s.service_name, s.otlp_endpoint)
        if self.uses_database:
            await asyncio.to_thread(migrate, s.database_url, s.schema_name, self.migrations)
            self._engine = create_engine(s.database_url, s.schema_name, pool_size=s.db_pool_size)
            self.health.ready["database"] = self._database_answers
        if s.create_topics:
            await ensure_topics(
                s.kafka_bootstrap,
                self.topics.all_event_topics(),
                max_record_bytes=s.kafka_max_record_bytes,
            )
        self._producer = create_producer(
            s.kafka_bootstrap,
            client_id=s.service_name,
            idempotence=s.kafka_idempotence,
            max_record_bytes=s.kafka_max_record_bytes,
        )
        await self._producer.start()
        for hook in self._startup:
            await hook()
        tasks: list[Coroutine[Any, Any, None]] = []
        if self.runs_relay:
            relay = OutboxRelay(
                self.engine,
                self.producer,
                schema=s.schema_name,
                dsn=libpq_dsn(s.database_url),
                batch_size=s.relay_batch_size,
            )
            self.health.live["relay"] = lambda: time.monotonic() - relay.last_round_at < 60
            # Work waiting and no round completed for relay_stall_seconds: not ready.
            self.health.ready["relay"] = lambda: not relay.stalled(s.relay_stall_seconds)
            tasks.append(relay.run(self.stop))
        for runner in self.consumers:
            runner.bind(self.engine, self.producer)
            tasks.append(runner.watch(self.stop))
        if self.timer_handlers:
            worker = TimerWorker(self.engine, self.timer_handlers, clock=self.clock)
            self.health.live["timers"] = lambda: time.monotonic() - worker.last_tick_at < 60
            tasks.append(worker.run(self.stop))
        tasks.extend(loop(self.stop) for loop in self.background)
        if self.consumers:
            await self.broker.start()
        self._tasks = [asyncio.create_task(self._supervise(t)) for t in tasks]

        app = create_app(s, self.health)
        for build in self._route_builders:
            build(app)
        runner_ = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner_.setup()
        await web.TCPSite(runner_, s.http_host, s.http_port).start()
        log.info("service started", http=f"http://{s.http_host}:{s.http_port}")
        return runner_

    async def _supervise(self, coro: Coroutine[Any, Any, None]) -> None:
        # A loop that crashes takes the service down: better a restart than a silent stall.
        try:
            await coro
        except Exception:
            log.exception("background loop crashed; stopping the service")
            self.stop.set()
            raise

    async def shutdown(self, runner: web.AppRunner) -> None:
        self.stop.set()
        await runner.cleanup()  # stop taking requests first
        # The subscribers finish the batch in hand and commit it, then their consumers stop.
        stopping = [self.broker.stop()] if self.consumers else []
        results = await asyncio.gather(*self._tasks, *stopping, return_exceptions=True)
        for hook in reversed(self._cleanup):
            await hook()
        if self._producer is not None:
            # Flushes what is in flight; bounded, because with the broker gone it would wait
            # for every request timeout (what was not acked stays in the outbox anyway).
            try:
                await asyncio.wait_for(self._producer.stop(), self.settings.shutdown_flush_seconds)
            except TimeoutError:
                log.warning("producer did not flush in time; unsent records are retried later")
        if self._engine is not None:
            await self._engine.dispose()
        log.info("service stopped", errors=[repr(r) for r in results if isinstance(r, Exception)])

    @property
    def crashed(self) -> bool:
        """A background loop ended with an error (the process should exit non-zero)."""
        return any(runner.crashed for runner in self.consumers) or any(
            t.done() and not t.cancelled() and t.exception() for t in self._tasks
        )

    async def _database_answers(self) -> bool:
        async with self.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        return True


async def _serve(runtime: ServiceRuntime) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stop.set)
    runner = await runtime.start()
    await runtime.stop.wait()
    log.info("shutting down: finishing batches in hand")
    await runtime.shutdown(runner)
    return 1 if runtime.crashed else 0


def serve(build: Callable[[], ServiceRuntime]) -> None:
    """Entry point for `python -m openlines.<service>`."""
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = eventloop.run(_serve_built(build))
    raise SystemExit(code)


async def _serve_built(build: Callable[[], ServiceRuntime]) -> int:
    # Built inside the running loop: composition roots may create loop-bound objects.
    return await _serve(build())
