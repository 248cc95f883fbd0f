"""Partition-parallel replay: one worker process per share of the partitions.

Replay is bound by Python CPU (fetch parsing and pydantic decoding), so a single process
cannot use a second core. Each worker here runs the ordinary `replay` over its share of the
partitions with its own engine and broker connection; since every stream lives in one partition
(records are keyed by stream id), per-stream order and the per-worker duplicate filter are as
good as in one process.

Workers are separate processes, so the projection's batch handler travels by reference: it must
be a module-level coroutine function. The pool can be started ahead of time (`start_pool`),
which keeps interpreter start-up out of the replay itself. Like `replay`, it reads with raw aiokafka
(manual assignment up to the end offsets; see replay.py for why not FastStream).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from openlines.kit import eventloop
from openlines.kit.db.engine import create_engine
from openlines.kit.replay import BatchHandler, ReplayStats, partitions_of, replay
from openlines.kit.topics import TopicNames


@dataclass(frozen=True)
class ReplayJob:
    """What every worker needs: plain values, and the handler by reference."""

    database_url: str
    schema: str
    bootstrap: str
    topics: tuple[str, ...]
    consumer_name: str
    apply_batch: BatchHandler
    since: datetime | None = None
    batch_size: int = 5000
    group: str | None = None
    namespace: str = ""


def start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes with the replay machinery imported, ready before the replay starts."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),  # no inherited event loop or threads
    )
    # Each submitted no-op makes a worker start and import this module.
    for done in [pool.submit(_warm) for _ in range(workers)]:
        done.result()
    return pool


async def replay_parallel(
    job: ReplayJob, *, workers: int, pool: ProcessPoolExecutor | None = None
) -> ReplayStats:
    """Replay `job` with up to `workers` processes; the stats add up the workers' stats."""
    started = time.perf_counter()
    shares = split(await _partitions(job), workers)
    own_pool = pool is None
    pool = pool or start_pool(len(shares))
    try:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, _run_share, job, share) for share in shares)
        )
    finally:
        if own_pool:
            pool.shutdown()
    total = ReplayStats()
    for stats in results:
        total.events += stats.events
        total.duplicates += stats.duplicates
        total.undecodable += stats.undecodable
        for phase, seconds in stats.phases.items():
            total.phases[phase] += seconds
    total.seconds = time.perf_counter() - started
    return total


def split(partitions: Sequence[tuple[str, int]], workers: int) -> list[list[tuple[str, int]]]:
    """Deal partitions round-robin into at most `workers` non-empty shares."""
    shares: list[list[tuple[str, int]]] = [[] for _ in range(max(1, workers))]
    for i, tp in enumerate(partitions):
        shares[i % len(shares)].append(tp)
    return [share for share in shares if share]


async def _partitions(job: ReplayJob) -> list[tuple[str, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=job.bootstrap)
    await consumer.start()
    try:
        return await partitions_of(consumer, job.topics, TopicNames(job.namespace))
    finally:
        await consumer.stop()


def _warm() -> None:
    return None


def _run_share(job: ReplayJob, share: list[tuple[str, int]]) -> ReplayStats:
    return eventloop.run(_replay_share(job, share))


async def _replay_share(job: ReplayJob, share: list[tuple[str, int]]) -> ReplayStats:
    engine = create_engine(job.database_url, job.schema, pool_size=2)
    try:
        return await replay(
            engine=engine,
            bootstrap=job.bootstrap,
            topics=job.topics,
            consumer_name=job.consumer_name,
            apply_batch=job.apply_batch,
            since=job.since,
            batch_size=job.batch_size,
            group=job.group,
            names=TopicNames(job.namespace),
            only=set(share),
        )
    finally:
        await engine.dispose()
