"""`openlines export events`: the topics as Parquet, one file per (topic, event type).

Columns are typed from the published JSON Schemas (`openlines.events.schema.envelope_schema`),
which stay the contract: the envelope's fields, then the payload's fields (a payload field that
shares an envelope field's name is `payload_<name>`), then where the record was (`kafka_topic`,
`kafka_partition`, `kafka_offset`). Date-times are UTC timestamps, nested objects are structs,
arrays are lists, enums and UUIDs are strings.

Why it is fast: records are grouped by the `type` header without parsing them, and each group
is parsed by pyarrow's JSON reader (C++) against the schema, a block of thousands at a time;
Python never builds an object per event. A record whose headers do not name the current
version of its type (an old schema version, or no headers) goes through the codec first, which
upcasts it, and joins its group as the current version's JSON.

pyarrow is the `openlines[analytics]` extra, imported here only.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from aiokafka import TopicPartition

from openlines.events.codec import DecodeError, from_json_dict
from openlines.events.envelope import EventPayload
from openlines.events.schema import envelope_schema
from openlines.events.topics import TOPICS
from openlines.kit.replay import ReplayProgress, partitions_of, replay_consumer, unfinished
from openlines.kit.topics import TopicNames

FLUSH_ROWS = 8192  # rows per hand-off to the writer thread (and per row group)
KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset")


@dataclass
class ExportStats:
    events: int = 0
    undecodable: int = 0
    seconds: float = 0.0
    """From the first fetch to the last file closed (as the bench's raw fetch is timed)."""
    startup: float = 0.0
    """Connecting, loading metadata, finding the start offsets."""
    by_type: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    # fetch and group run on the event loop; parse+write is what the loop waited for the
    # writer thread (a full hand-off queue, and the last files at the end).
    phases: dict[str, float] = field(
        default_factory=lambda: {"fetch": 0.0, "group": 0.0, "parse+write": 0.0}
    )

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# -- JSON Schema -> Arrow ------------------------------------------------------------------


def arrow_type(node: dict[str, Any], defs: dict[str, Any]) -> pa.DataType:
    if "$ref" in node:
        return arrow_type(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    for union in ("anyOf", "oneOf"):
        if union in node:
            options = [n for n in node[union] if n.get("type") != "null"]
            return arrow_type(options[0], defs) if len(options) == 1 else pa.string()
    if "enum" in node:
        return pa.string()
    kind = node.get("type")
    if kind == "string":
        return pa.timestamp("us", tz="UTC") if node.get("format") == "date-time" else pa.string()
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "array":
        return pa.list_(arrow_type(node.get("items", {}), defs))
    if kind == "object" and node.get("properties"):
        return pa.struct(
            [pa.field(name, arrow_type(sub, defs)) for name, sub in node["properties"].items()]
        )
    return pa.string()  # free-form: kept as JSON text


def arrow_schema(topic: str, kind: type[EventPayload]) -> pa.Schema:
    """The envelope as the JSON reader parses it (the payload a struct)."""
    schema = envelope_schema(TOPICS[topic], kind)
    defs = schema.get("$defs", {})
    return pa.schema(
        [pa.field(name, arrow_type(node, defs)) for name, node in schema["properties"].items()]
    )


def _flat(table: pa.Table) -> pa.Table:
    envelope = [name for name in table.column_names if name != "payload"]
    payload = table.column("payload")
    assert isinstance(payload.type, pa.StructType)
    names = list(envelope)
    columns = [table.column(name) for name in envelope]
    for i in range(payload.type.num_fields):
        name = payload.type.field(i).name
        names.append(f"payload_{name}" if name in envelope else name)
        columns.append(pa.chunked_array([chunk.field(i) for chunk in payload.chunks]))
    return pa.table(columns, names=names)


# -- the export ----------------------------------------------------------------------------


class _Group:
    """The records of one (topic, type) waiting to be parsed, and its Parquet file."""

    def __init__(self, directory: Path, topic: str, kind: type[EventPayload]) -> None:
        self.schema = arrow_schema(topic, kind)
        self.path = directory / topic / f"{kind.TYPE}.parquet"
        self.lines: list[bytes] = []
        self.kafka: tuple[list[str], list[int], list[int]] = ([], [], [])
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def add(self, value: bytes, topic: str, partition: int, offset: int) -> None:
        self.lines.append(value)
        self.kafka[0].append(topic)
        self.kafka[1].append(partition)
        self.kafka[2].append(offset)

    def take(self) -> tuple[list[bytes], tuple[list[str], list[int], list[int]]]:
        """The pending records, handed to `write` (in the writer thread)."""
        taken = self.lines, self.kafka
        self.lines, self.kafka = [], ([], [], [])
        return taken

    def write(self, lines: list[bytes], kafka: tuple[list[str], list[int], list[int]]) -> None:
        """Parse and append to the file. Runs in the one writer thread: pyarrow releases the
        GIL while it parses and compresses, so the event loop fetches the next records
        meanwhile."""
        if not lines:
            return
        parsed = pa_json.read_json(
            io.BytesIO(b"\n".join(lines)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=self.schema, unexpected_field_behavior="ignore"
            ),
            read_options=pa_json.ReadOptions(block_size=1 << 24),
        )
        table = _flat(parsed)
        for name, values, kind in zip(
            KAFKA_COLUMNS, kafka, (pa.string(), pa.int32(), pa.int64()), strict=True
        ):
            table = table.append_column(name, pa.array(values, kind))
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.write(*self.take())
        if self.writer is not None:
            self.writer.close()


def _current_version_hint(headers: Sequence[tuple[str, bytes]]) -> tuple[str, int] | None:
    name = version = None
    for key, raw in headers:
        if key == "type":
            name = raw
        elif key == "schema_version":
            version = raw
    if name is None or version is None:
        return None
    try:
        return name.decode(), int(version)
    except ValueError:
        return None


class _CurrentKinds:
    """The payload class a record's headers name at its current version, else None (the
    codec then upcasts the record). Records written by `codec.encode` carry `type` and
    `schema_version` first: their answer is looked up once per pair of header values."""

    def __init__(self, by_type: dict[str, type[EventPayload]]) -> None:
        self.by_type = by_type
        self.known: dict[tuple[bytes, bytes], type[EventPayload] | None] = {}

    def of(self, headers: Sequence[tuple[str, bytes]]) -> type[EventPayload] | None:
        if len(headers) >= 2 and headers[0][0] == "type" and headers[1][0] == "schema_version":
            key = (headers[0][1], headers[1][1])
            if key in self.known:
                return self.known[key]
            kind = self.known[key] = self._resolve(headers)
            return kind
        return self._resolve(headers)

    def _resolve(self, headers: Sequence[tuple[str, bytes]]) -> type[EventPayload] | None:
        hint = _current_version_hint(headers)
        kind = self.by_type.get(hint[0]) if hint else None
        if kind is None or hint is None or hint[1] != kind.SCHEMA_VERSION:
            return None
        return kind


async def export_events(
    directory: Path,
    *,
    bootstrap: str,
    names: TopicNames,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[str, ReplayProgress], None] | None = None,
    batch_size: int = 5000,
) -> ExportStats:
    """Write every record of the LOGICAL `topics` (default: all) between `since` and `until`
    (record timestamps) under `directory`; returns the counts per `<topic>/<Type>`."""
    from openlines.events.codec import to_json_dict

    stats = ExportStats()
    started = time.perf_counter()
    topics = list(topics or TOPICS)
    groups: dict[tuple[str, str], _Group] = {}
    current: dict[str, _CurrentKinds] = {}
    until_ms = int(until.timestamp() * 1000) if until else None
    consumer = replay_consumer(bootstrap, batch_size=batch_size)
    loop = asyncio.get_running_loop()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
    writes: list[asyncio.Future[None]] = []
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t, p in await partitions_of(consumer, topics, names)]
        consumer.assign(partitions)
        if since is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                hit = found.get(tp)
                consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        first = {tp: await consumer.position(tp) for tp in partitions}
        ends = await consumer.end_offsets(partitions)
        total = sum(max(0, ends[tp] - first[tp]) for tp in partitions)
        done = 0
        reading = time.perf_counter()
        stats.startup = reading - started
        while pending := await unfinished(consumer, partitions):
            t0 = time.perf_counter()
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=batch_size)
            t1 = time.perf_counter()
            flushed = 0.0
            for tp, records in batch.items():
                topic = names.logical(tp.topic)
                kinds = current.get(topic)
                if kinds is None:
                    kinds = current[topic] = _CurrentKinds(TOPICS[topic].by_type)
                for rec in records:
                    if until_ms is not None and rec.timestamp > until_ms:
                        continue
                    value = rec.value
                    kind = kinds.of(rec.headers)
                    if kind is None:
                        try:  # the codec upcasts; the group then gets the current version
                            env = from_json_dict(_json(value), topic=topic)
                        except (DecodeError, ValueError):
                            stats.undecodable += 1
                            continue
                        kind = type(env.payload)
                        value = _dumps(to_json_dict(env))
                    group = groups.get((topic, kind.TYPE))
                    if group is None:
                        group = groups[(topic, kind.TYPE)] = _Group(directory, topic, kind)
                    group.add(value, tp.topic, tp.partition, rec.offset)
                    stats.events += 1
                    if len(group.lines) >= FLUSH_ROWS:
                        t2 = time.perf_counter()
                        writes.append(loop.run_in_executor(writer, group.write, *group.take()))
                        if len(writes) > 2:  # bounded memory: wait for the oldest
                            await writes.pop(0)
                        flushed += time.perf_counter() - t2
            stats.phases["fetch"] += t1 - t0
            stats.phases["parse+write"] += flushed
            stats.phases["group"] += time.perf_counter() - t1 - flushed
            if progress is not None:
                done += sum(len(records) for records in batch.values())
                lag = 0
                for tp in partitions:
                    lag += max(0, (consumer.highwater(tp) or 0) - await consumer.position(tp))
                total = max(total, done + lag)
                progress("export", ReplayProgress(done, total, lag))
        t2 = time.perf_counter()
        for pending_write in writes:
            await pending_write
        for group in groups.values():
            await loop.run_in_executor(writer, group.close)
        stats.phases["parse+write"] += time.perf_counter() - t2
    finally:
        writer.shutdown(wait=True)
        await consumer.stop()
    for (topic, type_name), group in sorted(groups.items()):
        if group.rows:
            stats.by_type[f"{topic}/{type_name}"] = group.rows
            stats.files.append(group.path)
    stats.seconds = time.perf_counter() - reading
    return stats


def _json(value: bytes) -> Any:
    import pydantic_core

    return pydantic_core.from_json(value)


def _dumps(data: Any) -> bytes:
    import pydantic_core

    return pydantic_core.to_json(data)
