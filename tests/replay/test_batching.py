"""The statement batcher keeps each stream's statement order while it merges streams."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest_asyncio
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.kit.db.engine import create_engine
from openlines.replay.batching import COPY_FROM_ROWS, StatementBatcher, WrittenKeys

meta = MetaData()
rows = Table("batched", meta, Column("id", Text, primary_key=True), Column("n", Integer))
INSERT = insert(rows).on_conflict_do_nothing()
BUMP = update(rows).where(rows.c.id == bindparam("k")).values(n=rows.c.n + bindparam("by"))
DROP = delete(rows).where(rows.c.id == bindparam("k"))


@pytest_asyncio.fixture
async def conn(database_url: str, db_schema: str) -> AsyncIterator[AsyncConnection]:
    """A transaction in the test's schema, with this module's tables."""
    engine = create_engine(database_url, db_schema, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(meta.create_all)
            yield connection
    finally:
        await engine.dispose()


async def test_each_stream_runs_in_its_order_in_few_round_trips(conn: AsyncConnection) -> None:
    batcher = StatementBatcher(conn)
    for i in range(50):
        s = batcher.stream()
        await s.execute(INSERT, {"id": f"a{i}", "n": 1})
        await s.execute(BUMP, {"k": f"a{i}", "by": 10})
        await s.execute(BUMP, {"k": f"a{i}", "by": 100})
        s = batcher.stream()
        await s.execute(INSERT, {"id": f"b{i}", "n": 1})
        await s.execute(DROP, {"k": f"b{i}"})
        await s.execute(INSERT, {"id": f"b{i}", "n": 2})
    # A read flushes first, so it sees what was written before it.
    first = (await batcher.execute(select(rows.c.n).where(rows.c.id == "a0"))).scalar()
    assert first == 111
    assert batcher.statements <= 4
    found = dict((await conn.execute(select(rows.c.id, rows.c.n))).all())
    assert found == {**{f"a{i}": 111 for i in range(50)}, **{f"b{i}": 2 for i in range(50)}}


class Color(enum.StrEnum):
    RED = "red"


wide = Table(
    "batched_wide",
    meta,
    Column("id", Text, primary_key=True),
    Column("color", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    Column("doc", JSONB, nullable=False),
    Column("note", Text, server_default="default note"),
)
INSERT_WIDE = insert(wide).on_conflict_do_nothing(index_elements=["id"])


async def test_many_rows_of_an_insert_go_by_copy_with_the_same_result(
    conn: AsyncConnection,
) -> None:
    await conn.execute(INSERT_WIDE, {"id": "w0", "color": "blue", "tags": [], "doc": {}})
    batcher = StatementBatcher(conn)
    for i in range(COPY_FROM_ROWS + 50):
        await batcher.stream().execute(
            INSERT_WIDE,
            {"id": f"w{i}", "color": Color.RED, "tags": ["a", "b c"], "doc": [{"k": i}]},
        )
    await batcher.flush()
    found = (await conn.execute(select(wide).order_by(wide.c.id))).all()
    assert len(found) == COPY_FROM_ROWS + 50
    by_id = {row.id: row for row in found}
    assert tuple(by_id["w0"])[1:] == ("blue", [], {}, "default note")  # the conflict kept it
    assert tuple(by_id["w7"])[1:] == ("red", ["a", "b c"], [{"k": 7}], "default note")


typed = Table(
    "batched_typed",
    meta,
    Column("id", Uuid, primary_key=True),
    Column("body", Text),
    Column("color", Text),
    Column("tags", ARRAY(Text), nullable=False),
    Column("doc", JSONB),
    Column("at", DateTime(timezone=True)),
    Column("n", Integer),
    Column("flag", Boolean),
    Column("note", Text, server_default="default note"),
)
INSERT_TYPED = insert(typed).on_conflict_do_nothing(index_elements=["id"])
TRICKY = [
    "plain",
    "tab\there, new\nline, return\r, back\\slash \\N and \\t",
    "\\",
    "",
    "quotes \"double\" and 'single', {braces}, [brackets], NULL",
    "Добрий день 📦 ünïcödé",
]


async def test_a_fresh_copy_gets_the_rows_the_statements_would_write(
    conn: AsyncConnection,
) -> None:
    """The COPY text formatted by hand for a fresh copy holds exactly what the INSERTs hold:
    every awkward character, NULLs, arrays, JSON, enums, time zones; a repeated key is
    skipped as ON CONFLICT DO NOTHING skips it."""
    at = datetime(2026, 11, 30, 3, 14, 15, 926535, tzinfo=timezone(timedelta(hours=3)))
    values = [
        {
            "id": uuid.UUID(int=i + 1),
            "body": text_,
            "color": Color.RED if i % 2 else None,
            "tags": [text_, "b c", ""] if i % 3 else [],
            "doc": {"text": text_, "list": [1, None, True]} if i % 2 else None,
            "at": at if i % 2 else None,
            "n": i if i % 2 else None,
            "flag": bool(i % 2),
        }
        for i, text_ in enumerate(TRICKY)
    ]
    for row in values:  # what the statements write, in a table of their own
        await conn.execute(INSERT_TYPED, row)
    expected = (await conn.execute(select(typed).order_by(typed.c.id))).all()
    await conn.execute(delete(typed))

    written: WrittenKeys = {}
    batcher = StatementBatcher(conn, written)
    for row in values:
        await batcher.stream().execute(INSERT_TYPED, row)
    await batcher.stream().execute(INSERT_TYPED, {**values[0], "body": "a repeat, skipped"})
    await batcher.flush()
    batcher = StatementBatcher(conn, written)  # the next batch: the keys carry over
    await batcher.stream().execute(INSERT_TYPED, {**values[1], "body": "skipped again"})
    await batcher.flush()
    found = (await conn.execute(select(typed).order_by(typed.c.id))).all()
    assert found == expected
    assert batcher.statements == 1


async def test_deferred_statements_are_left_to_the_caller(conn: AsyncConnection) -> None:
    batcher = StatementBatcher(conn, deferred=(BUMP,))
    s = batcher.stream()
    await s.execute(INSERT, {"id": "d0", "n": 1})
    await s.execute(BUMP, {"k": "d0", "by": 10})
    await batcher.flush()
    assert (await conn.execute(select(rows.c.n).where(rows.c.id == "d0"))).scalar() == 1
