"""`openlines deadletters`: what the relay could not publish is listed and re-driven, and a
re-drive of a record that is still too large fails clearly and keeps it."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime

import pytest

from openlines.events.catalog import Direction, MessageAppended
from openlines.events.codec import decode
from openlines.kit.db.engine import create_engine, libpq_dsn
from openlines.kit.db.migrate import migrate
from openlines.kit.eventstore import EventStore
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.producer import create_producer
from openlines.kit.relay import OutboxRelay
from openlines.kit.testing.kafka import read_topic

pytestmark = pytest.mark.infra  # runs servers or processes of its own

SMALL = 16 * 1024


async def _cli(*argv: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "deadletters",
        *argv,
        env={**os.environ, "COLUMNS": "300", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_list_then_redrive_a_dead_letter(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> None:
    topic = f"openlines.test.dl.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic])
    migrate(database_url, db_schema)
    engine = create_engine(database_url, db_schema)
    big = MessageAppended(
        dialog_id=uuid.uuid4(),
        message_id=uuid.uuid4(),
        direction=Direction.IN,
        text="é" * SMALL,  # legal, but over the small producer's record limit below
        channel_id="tg",
        conversation_key="tg:1",
        sent_at=datetime.now(UTC),
    )
    small = create_producer(kafka_bootstrap, client_id="dl-test", max_record_bytes=SMALL)
    await small.start()
    try:
        async with engine.begin() as conn:
            [event] = await EventStore(db_schema, producer="test").append(
                conn, "s", 0, [big], topic=topic
            )
        relay = OutboxRelay(engine, small, schema=db_schema, dsn=libpq_dsn(database_url))
        assert await relay.publish_pending() == 1
        assert relay.dead_lettered == 1
    finally:
        await small.stop()
        await engine.dispose()
    where = ["--database-url", database_url, "--bootstrap", kafka_bootstrap, "--schema", db_schema]

    code, out = await _cli(*where, "list")
    assert code == 0, out
    [line] = [ln for ln in out.splitlines() if str(event.event_id) in ln]
    dead_id = line.split()[0]
    assert "MessageAppended" in line and "MessageSizeTooLargeError" in line

    # Still too large for the producer's limit: fails clearly, stays listed.
    code, out = await _cli(*where, "redrive", dead_id, OPENLINES_KAFKA_MAX_RECORD_BYTES=str(SMALL))
    assert code == 1, out
    assert f"FAILED {dead_id}" in out and "MessageSizeTooLargeError" in out
    code, out = await _cli(*where, "list")
    assert dead_id in out

    # With a record limit that takes it (the topic accepts it), it is published and removed.
    code, out = await _cli(*where, "redrive", "--all")
    assert code == 0, out
    assert f"re-driven {dead_id}" in out
    [record] = await read_topic(kafka_bootstrap, topic, 1, timeout=20)
    assert decode(record.value, record.headers, topic=topic).event_id == event.event_id
    code, out = await _cli(*where, "list")
    assert dead_id not in out and "0 dead letter(s)" in out
