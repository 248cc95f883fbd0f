"""`openlines bench kit`, replay part: the dialogs read-model rebuild and the Parquet export of
the same dialog events, each beside a raw aiokafka fetch of those records in the same run."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from openlines.bench.infra import Infra
from openlines.bench.kit import Result, _raw_fetch_rate
from openlines.events.catalog import Direction
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS
from openlines.kit.db.engine import create_engine
from openlines.kit.db.migrate import migrate
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.kafka.producer import create_producer
from openlines.kit.topics import TopicNames

EVENTS_PER_DIALOG = 10  # opened, 7 messages in and out, assigned, closed


def dialog_history(dialog_id: uuid.UUID, chat: str) -> list[Envelope]:
    payloads = [
        factories.dialog_opened(dialog_id, chat=chat),
        factories.message_appended(dialog_id, "hello, where is my order?", chat=chat),
        factories.dialog_assigned(dialog_id, "ann"),
    ]
    for i in range(3):
        payloads.append(
            factories.message_appended(
                dialog_id, f"answer {i}", direction=Direction.OUT, chat=chat, author_id="ann"
            )
        )
        payloads.append(factories.message_appended(dialog_id, f"thanks {i}", chat=chat))
    payloads.append(factories.dialog_closed(dialog_id, "ann"))
    return [
        factories.envelope(p, stream_id=str(dialog_id), stream_version=v)
        for v, p in enumerate(payloads, start=1)
    ]


async def _publish(infra: Infra, topic: str, n: int) -> int:
    from openlines.events.codec import encode

    producer = create_producer(infra.kafka_bootstrap, client_id="bench-dialogs", linger_ms=5)
    await producer.start()
    sent = []
    try:
        for d in range(max(1, n // EVENTS_PER_DIALOG)):
            for env in dialog_history(uuid.uuid4(), f"b{d}"):
                r = encode(env)
                sent.append(await producer.send(topic, r.value, key=r.key, headers=r.headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


async def bench_replay_and_export(infra: Infra, n: int) -> list[Result]:
    from openlines.dialogs.app import MIGRATIONS
    from openlines.replay.models import read_models
    from openlines.replay.rebuild import compare, drop_copy, rebuild

    names = TopicNames(f"benchr{uuid.uuid4().hex[:6]}.")
    topic = names.physical(DIALOGS)
    await ensure_topics(infra.kafka_bootstrap, [topic])
    events = await _publish(infra, topic, n)
    schema = f"bench_dialogs_{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(migrate, infra.database_url, schema, MIGRATIONS)
    fetch_before = await _raw_fetch_rate(infra, topic)

    built = await rebuild(
        read_models()["dialogs"],
        database_url=infra.database_url,
        bootstrap=infra.kafka_bootstrap,
        names=names,
        live_schema=schema,
    )
    stats = built.stats[0]
    engine = create_engine(infra.database_url, schema, pool_size=1)
    try:
        rows = {t: new.rows for t, _, new in await compare(engine, built)}
        await drop_copy(engine, built.new_schema)
    finally:
        await engine.dispose()

    export_rate, export_notes = 0.0, {"skipped": "pyarrow is not installed"}
    try:
        from openlines.replay.export import export_events
    except ImportError:
        pass
    else:
        with tempfile.TemporaryDirectory(prefix="openlines-bench-export-") as tmp:
            exported = await export_events(
                Path(tmp), bootstrap=infra.kafka_bootstrap, names=names, topics=[DIALOGS]
            )
        export_rate = exported.rate
        total = sum(exported.phases.values()) or 1.0
        export_notes = {k: f"{v:.2f}s ({v / total:.0%})" for k, v in exported.phases.items()}
        export_notes["start-up"] = f"{exported.startup:.2f}s before the first fetch, not counted"
    fetch_after = await _raw_fetch_rate(infra, topic)
    fetch = (fetch_before + fetch_after) / 2
    total = sum(stats.phases.values()) or 1.0
    phases = {k: f"{v:.2f}s ({v / total:.0%})" for k, v in stats.phases.items()}
    phases["rows"] = ", ".join(f"{t} {n:,}" for t, n in rows.items())
    baseline = f"raw aiokafka fetch, same {events:,} records"
    return [
        Result(
            "dialogs read-model rebuild (openlines replay)", stats.rate, baseline, fetch, phases
        ),
        Result(
            "Parquet export (openlines export events)", export_rate, baseline, fetch, export_notes
        ),
        Result(
            "raw aiokafka fetch (before / after the two)",
            fetch_before,
            "the same, after",
            fetch_after,
            {"ceiling": "what a reader on aiokafka reaches before doing any work"},
        ),
    ]


async def run_with_kit(infra: Infra, n: int) -> list[Result]:
    """`openlines bench kit`: the kit's figures, then replay and export."""
    from openlines.bench import kit

    return await kit.run(infra, n) + await bench_replay_and_export(infra, n)
