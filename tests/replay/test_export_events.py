"""`openlines export events`: Parquet files that DuckDB reads, one per event type, with as
many rows as were produced and the columns typed from the JSON Schemas."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from openlines.events.catalog import Attachment, AttachmentKind
from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS, INBOUND, TOPICS
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.producer import create_producer
from openlines.kit.testing.publish import publisher
from openlines.kit.topics import TopicNames
from openlines.replay.export import export_events


async def test_every_produced_event_is_in_the_parquet_file_of_its_type(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = TopicNames(f"exp{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka_bootstrap, [names.physical(t) for t in TOPICS])
    dialog_ids = [uuid.uuid4() for _ in range(5)]
    dialogs: list[Envelope] = [
        factories.envelope(factories.dialog_opened(d, chat=f"c{i}"), stream_version=1)
        for i, d in enumerate(dialog_ids)
    ]
    photo = Attachment(kind=AttachmentKind.PHOTO, file_id="f-1", width=10, height=20)
    dialogs += [
        factories.envelope(
            factories.message_appended(d, f"text {i}", attachments=[photo] if i == 0 else []),
            stream_version=2 + i,
        )
        for i, d in enumerate(dialog_ids * 2)
    ]
    dialogs += [
        factories.envelope(factories.dialog_closed(d), stream_version=20) for d in dialog_ids[:2]
    ]
    inbound = [factories.envelope(factories.message_received(f"c{i}", "hi")) for i in range(3)]
    async with publisher(kafka_bootstrap, names.namespace) as pub:
        await pub.publish(DIALOGS, *dialogs)
        await pub.publish(INBOUND, *inbound)
    # A record without headers (decoded from its body) and one that is not an event at all.
    producer = create_producer(kafka_bootstrap, client_id="export-test")
    await producer.start()
    try:
        bare = factories.envelope(factories.dialog_closed(dialog_ids[2]), stream_version=21)
        await producer.send_and_wait(names.physical(DIALOGS), encode(bare).value, key=b"x")
        await producer.send_and_wait(names.physical(DIALOGS), b"not json", key=b"x")
    finally:
        await producer.stop()

    seen: list[int] = []
    stats = await export_events(
        tmp_path,
        bootstrap=kafka_bootstrap,
        names=names,
        progress=lambda _, p: seen.append(p.done),
        batch_size=4,  # several fetches, so the progress moves
    )
    expected = {
        f"{DIALOGS}/DialogOpened": 5,
        f"{DIALOGS}/MessageAppended": 10,
        f"{DIALOGS}/DialogClosed": 3,
        f"{INBOUND}/MessageReceived": 3,
    }
    assert stats.by_type == expected
    assert stats.undecodable == 1
    assert len(seen) > 1 and seen == sorted(seen)

    db = duckdb.connect()
    for key, count in expected.items():
        topic, type_name = key.split("/")
        path = tmp_path / topic / f"{type_name}.parquet"
        assert db.execute(f"SELECT count(*) FROM '{path}'").fetchone() == (count,)
    messages = tmp_path / DIALOGS / "MessageAppended.parquet"
    types = dict(
        db.execute(f"SELECT column_name, column_type FROM (DESCRIBE '{messages}')").fetchall()
    )
    assert types["occurred_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["stream_version"] == "BIGINT"
    assert types["text"] == "VARCHAR"
    assert types["attachments"].startswith("STRUCT(") and types["attachments"].endswith("[]")
    rows = db.execute(
        f"SELECT text, attachments[1].width, kafka_offset FROM '{messages}' "
        "WHERE len(attachments) > 0"
    ).fetchall()
    assert rows == [("text 0", 10, rows[0][2])]
    opened = tmp_path / DIALOGS / "DialogOpened.parquet"
    names_found = db.execute(
        f"SELECT customer.name, count(*) FROM '{opened}' GROUP BY 1"
    ).fetchall()
    assert names_found == [("Carla", 5)]
    # The whole export reads as one table too (columns matched by name).
    total = db.execute(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/*/*.parquet', union_by_name=true)"
    ).fetchone()
    assert total == (21,)
