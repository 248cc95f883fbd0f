"""The statement batcher keeps each stream's statement order while it merges streams."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.kit.db.engine import create_engine
from openlines.replay.batching import COPY_FROM_ROWS, StatementBatcher

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
