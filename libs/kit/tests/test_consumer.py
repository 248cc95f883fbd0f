"""Idempotent apply, redelivery without double effect, and poison records to the DLQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import DialogRenamed
from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.events.topics import dlq_topic
from openlines.kit.consumer import ConsumerRunner, Subscription
from openlines.kit.kafka.producer import create_producer

from .helpers import (
    Kit,
    applied_once_each,
    catch_all,
    count_effect,
    has_applied,
    make_counter,
    read_all,
    read_effects,
    renamed,
    run_until,
)


async def _publish(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes]) -> None:
    producer = create_producer(bootstrap, client_id="test-pub")
    await producer.start()
    try:
        for value, key in zip(values, keys, strict=True):
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _records(n: int, stream: str = "s") -> list[Envelope]:
    return [
        Envelope.new(renamed(i, stream), stream_id=stream, stream_version=i + 1, producer="test")
        for i in range(n)
    ]


def _caught_up(runner: ConsumerRunner) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        s = runner.status
        return s.started and s.lag == 0 and bool(s.assigned)

    return check


async def test_redelivered_records_have_no_second_effect(kit: Kit) -> None:
    await make_counter(kit.engine)
    topic = await kit.new_topic(partitions=1)
    envs = _records(50)
    records = [encode(e) for e in envs]
    await _publish(kit.bootstrap, topic, [r.value for r in records], [r.key for r in records])
    # The relay may publish an event twice after a crash: send a few again.
    await _publish(
        kit.bootstrap, topic, [r.value for r in records[:10]], [r.key for r in records[:10]]
    )

    group = f"proj-{kit.schema}"

    class CrashesBeforeOffsetCommit(ConsumerRunner):
        # The DB transaction commits, then the process "dies" before Kafka hears about it.
        async def commit_offsets(self, consumer, offsets):
            return None

    sub = catch_all(group, topic, count_effect, batch_size=7)
    first = kit.runner(sub, cls=CrashesBeforeOffsetCommit)
    await run_until(first, has_applied(first, 50))
    # No offsets were committed: a new member of the group gets everything again.
    second = kit.runner(sub)
    await run_until(second, _caught_up(second))
    assert len(await applied_once_each(kit.engine)) == 50
    assert second.status.applied == 0


async def test_poison_record_goes_to_dlq_and_partition_keeps_moving(kit: Kit) -> None:
    await make_counter(kit.engine)
    topic = await kit.new_topic(partitions=1)
    envs = _records(20)

    async def fails_on_title_5(conn: AsyncConnection, env: Envelope) -> None:
        await count_effect(conn, env)
        if env.payload.title == "title 5":
            raise RuntimeError("cannot project title 5")

    records = [encode(e) for e in envs]
    values = [r.value for r in records]
    keys = [r.key for r in records]
    values.insert(12, b"{not json")  # undecodable: straight to the DLQ, no retries
    keys.insert(12, b"s")
    await _publish(kit.bootstrap, topic, values, keys)

    sub = catch_all(
        f"poison-{kit.schema}",
        topic,
        fails_on_title_5,
        batch_size=50,
        max_attempts=3,
        retry_backoff=0.01,
    )
    runner = kit.runner(sub)
    await run_until(runner, has_applied(runner, 19))
    effects = await applied_once_each(kit.engine)
    assert "s/title 5" not in effects  # its effect was rolled back with its savepoint
    assert len(effects) == 19
    # Counted once each, after commit: the rolled-back first attempt at the batch counts nothing.
    assert runner.status.applied == 19

    dead = await read_all(kit.bootstrap, dlq_topic(topic), 2)
    assert len(dead) == 2
    by_offset = {int(dict(r.headers)["dlq.original_offset"]): dict(r.headers) for r in dead}
    assert set(by_offset) == {5, 12}
    poison = by_offset[5]
    assert poison["dlq.original_topic"] == topic.encode()
    assert poison["dlq.original_partition"] == b"0"
    assert poison["dlq.attempts"] == b"3"
    assert b"cannot project title 5" in poison["dlq.error"]
    assert by_offset[12]["dlq.attempts"] == b"1"
    assert (
        dead[[int(dict(r.headers)["dlq.original_offset"]) for r in dead].index(12)].value
        == b"{not json"
    )


async def test_events_not_accepted_are_acknowledged_without_a_transaction(kit: Kit) -> None:
    await make_counter(kit.engine)
    topic = await kit.new_topic(partitions=1)
    records = [encode(e) for e in _records(10)]
    values = [r.value for r in records]
    keys = [r.key for r in records]
    values.insert(4, b"{not json")  # not decodable, so not "not accepted": still dead-lettered
    keys.insert(4, b"s")
    await _publish(kit.bootstrap, topic, values, keys)

    def even_titles(event: DialogRenamed) -> bool:
        return int(event.title.split()[-1]) % 2 == 0

    group = f"filtered-{kit.schema}"
    sub: Subscription = Subscription(group, [topic], batch_size=3)
    sub.on(DialogRenamed, when=even_titles)(count_effect)
    filtered = kit.runner(sub)
    await run_until(filtered, has_applied(filtered, 5))
    assert await read_effects(kit.engine) == {f"s/title {i}": 1 for i in (0, 2, 4, 6, 8)}
    async with kit.engine.connect() as conn:
        claimed = await conn.scalar(
            text("SELECT count(*) FROM inbox WHERE consumer = :c"), {"c": group}
        )
    assert claimed == 5  # the odd ones left no inbox row
    dead = await read_all(kit.bootstrap, dlq_topic(topic), 1)
    assert [r.value for r in dead] == [b"{not json"]

    # The skipped records were acknowledged: the group, without the filter, has nothing left.
    everything = kit.runner(catch_all(group, topic, count_effect, batch_size=3))
    await run_until(everything, _caught_up(everything))
    assert everything.status.applied == 0
    assert len(await read_effects(kit.engine)) == 5


async def test_a_deadlock_between_two_consumers_is_retried_and_keeps_them_ready(kit: Kit) -> None:
    async with kit.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE tallies (id text PRIMARY KEY, n int NOT NULL)"))
        await conn.execute(text("INSERT INTO tallies VALUES ('a', 0), ('b', 0)"))
    # Two topics whose batches touch the same two rows in opposite orders.
    orders = {"s1": ["a", "b"], "s2": ["b", "a"]}
    topics = {}
    for stream, rows in orders.items():
        topics[stream] = await kit.new_topic(partitions=1)
        envs = [
            Envelope.new(
                DialogRenamed(dialog_id=uuid.uuid4(), title=row, actor_id="op"),
                stream_id=stream,
                stream_version=v,
                producer="test",
            )
            for v, row in enumerate(rows, start=1)
        ]
        records = [encode(e) for e in envs]
        await _publish(
            kit.bootstrap, topics[stream], [r.value for r in records], [r.key for r in records]
        )

    both_hold_their_first_row = asyncio.Barrier(2)
    first_attempt: set[str] = set()

    async def tally(conn: AsyncConnection, env: Envelope) -> None:
        await conn.execute(
            text("UPDATE tallies SET n = n + 1 WHERE id = :id"), {"id": env.payload.title}
        )
        if env.stream_id not in first_attempt:
            first_attempt.add(env.stream_id)
            await asyncio.wait_for(both_hold_their_first_row.wait(), 30)

    runners = [
        kit.runner(catch_all(f"tally-{stream}-{kit.schema}", topic, tally, batch_size=10))
        for stream, topic in topics.items()
    ]
    flagged: list[str] = []

    async def both_done() -> bool:
        flagged.extend(r.status.infra_error for r in runners if r.status.infra_error)
        return all(r.status.applied == 2 and r.status.lag == 0 for r in runners)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        async with asyncio.timeout(60):
            while not await both_done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    async with kit.engine.connect() as conn:
        result = await conn.execute(text("SELECT id, n FROM tallies"))
        tallies = {row.id: row.n for row in result}
    assert tallies == {"a": 2, "b": 2}  # the loser's rolled-back work was redone, once
    conflicts = sum(
        REGISTRY.get_sample_value(
            "openlines_consumer_conflict_retries_total", {"consumer": r.sub.name}
        )
        or 0.0
        for r in runners
    )
    assert conflicts >= 1  # Postgres did pick a deadlock victim
    assert flagged == []  # a lost deadlock is not an outage: readiness never went red


async def test_a_batch_retried_after_an_outage_dead_letters_nothing_twice(kit: Kit) -> None:
    await make_counter(kit.engine)
    topic = await kit.new_topic(partitions=1)
    records = [encode(e) for e in _records(3)]
    values = [b"{not json", *(r.value for r in records)]
    await _publish(kit.bootstrap, topic, values, [b"s"] * len(values))
    outages = [OSError("database went away")]  # the first handler call meets an outage

    async def flaky(conn: AsyncConnection, env: Envelope) -> None:
        if outages:
            raise outages.pop()
        await count_effect(conn, env)

    runner = kit.runner(catch_all(f"flaky-{kit.schema}", topic, flaky, batch_size=10))
    await run_until(runner, has_applied(runner, 3))
    assert len(await read_effects(kit.engine)) == 3
    # Both attempts were over before the records applied: a second copy would be there.
    dead = await read_all(kit.bootstrap, dlq_topic(topic), 1)
    assert [r.value for r in dead] == [b"{not json"]
