"""The session fixtures give a real broker and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import psutil
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from psycopg import sql

from openlines.kit.embedded import EmbeddedKafka, EmbeddedPostgres, StartupError, with_database
from openlines.kit.embedded.postgres import running_postmaster
from openlines.kit.kafka.admin import (
    MAX_RECORD_BYTES,
    TopicSpec,
    admin_client,
    ensure_topics,
    wait_for_kafka,
)
from openlines.kit.testing.plugin import TopicFactory

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_produce_and_consume_with_headers(kafka_bootstrap: str, unique_topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            unique_topic, b'{"n": 1}', key=b"dialog-1", headers=[("type", b"DialogOpened")]
        )
    finally:
        await producer.stop()

    # No group: joining one costs seconds of rebalance delay on Tansu, and is not under test.
    consumer = AIOKafkaConsumer(
        unique_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"dialog-1", b'{"n": 1}')
    assert list(record.headers) == [("type", b"DialogOpened")]


async def test_topics_keep_events_forever_and_take_the_largest_record(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    name = await topic_factory("retained", partitions=4)
    async with admin_client(kafka_bootstrap) as admin:
        (described,) = await admin.describe_topics([name])
        (configs,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    assert len(described["partitions"]) == 4
    entries = {entry[0]: entry[1] for entry in configs.resources[0][4]}
    assert entries["retention.ms"] == "-1"
    # Every record the producers may send is accepted (their max_request_size).
    assert entries["max.message.bytes"] == str(MAX_RECORD_BYTES)


async def test_ensure_topics_is_idempotent(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    name = await topic_factory("again", partitions=2)
    await ensure_topics(kafka_bootstrap, [name, TopicSpec(name, partitions=5)])
    async with admin_client(kafka_bootstrap) as admin:
        (described,) = await admin.describe_topics([name])
    assert len(described["partitions"]) == 2


async def test_wait_for_kafka(kafka_bootstrap: str) -> None:
    await wait_for_kafka(kafka_bootstrap, timeout=5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(TimeoutError):
            await wait_for_kafka(closed, timeout=0.3)


def test_sql_in_fresh_schema(database_url: str, db_schema: str) -> None:
    assert database_url.startswith("postgresql://")
    with psycopg.connect(database_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(db_schema)))
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        conn.execute("CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes (body) VALUES ('hello'), ('world')")
        rows = conn.execute("SELECT body FROM notes ORDER BY id").fetchall()
        database = conn.execute("SELECT current_database()").fetchone()
    assert rows == [("hello",), ("world",)]
    assert database is not None and database[0].startswith("openlines_test_")


def test_schemas_are_unique_per_test(database_url: str, db_schema: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [db_schema]
        ).fetchone()
    assert row == (0,)


def test_with_database_keeps_socket_and_port() -> None:
    url = "postgresql://postgres@/postgres?host=/tmp/pg&port=5432"
    assert with_database(url, "x_1") == "postgresql://postgres@/x_1?host=/tmp/pg&port=5432"
    assert with_database("postgres://u:p@h:5/db", "y") == "postgresql://u:p@h:5/y"


def test_embedded_kafka_stops_its_process(tmp_path: Path) -> None:
    with EmbeddedKafka(log_path=tmp_path / "tansu.log") as broker:
        pid = broker.pid
        assert pid is not None and psutil.pid_exists(pid)
        host, port = broker.bootstrap.split(":")
        socket.create_connection((host, int(port)), 1).close()
    assert not psutil.pid_exists(pid)


def test_embedded_kafka_failure_shows_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedKafka(port=taken.getsockname()[1], log_path=tmp_path / "tansu.log")
        with pytest.raises(StartupError, match="Address in use"):
            broker.start()
    assert broker.pid is None


def test_embedded_postgres_start_stop_leaves_nothing(tmp_path: Path) -> None:
    data_dir = Path("/tmp") / f"ol-{tmp_path.name[-12:]}"  # short: Unix socket path limit
    try:
        with EmbeddedPostgres(data_dir) as server:
            postmaster = running_postmaster(data_dir)
            assert postmaster is not None
            family = [postmaster, *postmaster.children(recursive=True)]
            url = server.create_database("app")
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("app",)
        assert running_postmaster(data_dir) is None
        assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
