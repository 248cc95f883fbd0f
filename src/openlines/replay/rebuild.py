"""Build a read model afresh beside the live one, compare them, switch to the new copy.

**Where the copy goes.** A new schema, `<service schema>_r<time>`, with the read model's
tables created `LIKE` the live ones (columns, defaults, indexes), filled by the kit's batched
replay through the service's own projection. The live service keeps reading and writing its
tables meanwhile: nothing of the rebuild touches them.

**How the services learn of a switch: they do not need to.** The switch moves the tables,
not the services: in one transaction it locks the live tables, brings the copy level with them
(waits for the service's relay to empty its outbox, then reads the topics' tail, then runs
the model's own catch-up, e.g. dialogs' events still not relayed), moves
the live tables out to a schema of their own and moves the copy's tables in under the same
names (`ALTER TABLE ... SET SCHEMA`), renaming the copy's indexes to the live names. A service's
next statement resolves its table names to the new tables (PostgreSQL re-resolves a name
whose table changed while it waited for the lock, and invalidates cached plans), so there is no
pointer to read, no cache to expire, no window in which two services read different copies, and
the migrations keep finding the tables where they always were. We chose this over a pointer
row read per transaction (a query more on every request, a stale window as long as its cache)
and over a per-connection `search_path` (pooled connections keep the old path until they are
recycled). The price is an ACCESS EXCLUSIVE lock held for the catch-up and the moves: readers
and writers wait for it (milliseconds to a second), none fails. The old tables are dropped
right after the commit.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit.db.engine import check_schema_name, create_engine
from openlines.kit.replay import BatchHandler, Positions, ReplayProgress, ReplayStats, replay
from openlines.kit.topics import TopicNames
from openlines.replay.registry import ReadModel, RebuildContext

Progress = Callable[[str, ReplayProgress], None]


@dataclass
class Rebuild:
    model: ReadModel
    live_schema: str
    new_schema: str
    stats: list[ReplayStats] = field(default_factory=list)
    positions: list[Positions] = field(default_factory=list)
    handlers: list[BatchHandler] = field(default_factory=list)
    """The passes' handlers, whose state (dialogs: the aggregates) a switch continues from."""

    @property
    def events(self) -> int:
        return sum(s.events for s in self.stats)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stats)


@dataclass(frozen=True)
class TableDigest:
    rows: int
    checksum: str


def new_schema_name(live_schema: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%f")  # two at once never clash
    return check_schema_name(f"{live_schema}_r{stamp}")


async def create_copy(conn: AsyncConnection, live: str, new: str, tables: tuple[str, ...]) -> None:
    """`new` with empty tables shaped like `live`'s (columns, defaults, indexes, comments)."""
    check_schema_name(live)
    check_schema_name(new)
    owned = await conn.scalar(
        text(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = :s "
            "AND table_name = ANY(:t) AND column_default LIKE 'nextval(%'"
        ),
        {"s": live, "t": list(tables)},
    )
    if owned:
        # LIKE would share the live table's sequence, which the switch then drops with it.
        raise RuntimeError(f"{live}: a read-model table has a serial column; use an identity")
    await conn.execute(text(f'CREATE SCHEMA "{new}"'))
    for table in tables:
        await conn.execute(
            text(f'CREATE TABLE "{new}"."{table}" (LIKE "{live}"."{table}" INCLUDING ALL)')
        )


async def rebuild(
    model: ReadModel,
    *,
    database_url: str,
    bootstrap: str,
    names: TopicNames,
    live_schema: str | None = None,
    since: datetime | None = None,
    progress: Progress | None = None,
    batch_size: int = 5000,
) -> Rebuild:
    """Replay `model`'s topics into a new schema; the live model is not touched."""
    live_schema = live_schema or model.schema
    new = new_schema_name(live_schema)
    live = create_engine(database_url, live_schema, pool_size=2)
    target = create_engine(database_url, new, pool_size=2)
    result = Rebuild(model, live_schema, new)
    try:
        async with live.begin() as conn:
            await create_copy(conn, live_schema, new, model.tables)
        context = RebuildContext(live=live, since=since)
        for step in model.passes:
            label = ", ".join(step.topics)
            handler = step.handler(context)
            result.handlers.append(handler)
            stats = await replay(
                engine=target,
                bootstrap=bootstrap,
                topics=step.topics,
                consumer_name=f"replay-{new}",
                apply_batch=handler,
                since=since,
                batch_size=batch_size,
                names=names,
                record_inbox=False,
                progress=_labelled(progress, label),
            )
            await finish(target, handler)
            result.stats.append(stats)
            result.positions.append(stats.positions)
    except BaseException:
        await target.dispose()
        await drop_copy(live, new)  # a half-built copy is of no use to anyone
        raise
    finally:
        await target.dispose()
        await live.dispose()
    return result


async def finish(engine: AsyncEngine, handler: BatchHandler) -> None:
    """A handler that holds rows back to write them in bulk (`finish(conn)`) writes them now."""
    done = getattr(handler, "finish", None)
    if done is not None:
        async with engine.begin() as conn:
            await done(conn)


def _labelled(progress: Progress | None, label: str) -> Callable[[ReplayProgress], None] | None:
    if progress is None:
        return None
    return lambda p: progress(label, p)


async def digest(conn: AsyncConnection, schema: str, table: str) -> TableDigest:
    """Row count and an order-independent checksum of the rows, leaving out the columns that
    record when a row was written (`DEFAULT now()`), which differ between copies by nature."""
    columns = [
        row.column_name
        for row in await conn.execute(
            text(
                "SELECT column_name, column_default FROM information_schema.columns "
                # By name: a copy made from the table declarations may order its columns
                # otherwise than the live table's chain of migrations did.
                "WHERE table_schema = :s AND table_name = :t ORDER BY column_name"
            ),
            {"s": schema, "t": table},
        )
        if not re.search(r"now\(\)|current_timestamp", row.column_default or "", re.I)
    ]
    row_expr = ", ".join(f'"{c}"' for c in columns)
    found = (
        await conn.execute(
            text(
                f"SELECT count(*) AS n, coalesce(md5(string_agg(h, '' ORDER BY h)), '') AS sum "
                f'FROM (SELECT md5(ROW({row_expr})::text) AS h FROM "{schema}"."{table}") r'
            )
        )
    ).one()
    return TableDigest(found.n, found.sum)


async def compare(
    engine: AsyncEngine, rebuild: Rebuild
) -> list[tuple[str, TableDigest, TableDigest]]:
    """(table, live, rebuilt) for every table of the model."""
    async with engine.connect() as conn:
        return [
            (
                table,
                await digest(conn, rebuild.live_schema, table),
                await digest(conn, rebuild.new_schema, table),
            )
            for table in rebuild.model.tables
        ]


async def drop_copy(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{check_schema_name(schema)}" CASCADE'))


@dataclass(frozen=True)
class Switched:
    caught_up_events: int
    caught_up_streams: int
    locked_seconds: float


async def switch(
    rebuild: Rebuild,
    *,
    database_url: str,
    bootstrap: str,
    names: TopicNames,
    wait_seconds: float = 60.0,
) -> Switched:
    """Make the rebuilt copy the live read model (see the module's docstring), drop the old."""
    model, live_schema, new = rebuild.model, rebuild.live_schema, rebuild.new_schema
    live = create_engine(database_url, live_schema, pool_size=2)
    target = create_engine(database_url, new, pool_size=2)
    handlers = rebuild.handlers
    positions = [dict(p) for p in rebuild.positions]
    trash = check_schema_name(f"{new}_old")
    caught_up = 0

    async def tail() -> int:
        count = 0
        for i, step in enumerate(model.passes):
            stats = await replay(
                engine=target,
                bootstrap=bootstrap,
                topics=step.topics,
                consumer_name=f"replay-{new}",
                apply_batch=handlers[i],
                start=positions[i],
                names=names,
                record_inbox=False,
            )
            await finish(target, handlers[i])
            positions[i] = stats.positions
            count += stats.events
        return count

    streams, locked_seconds = 0, 0.0
    try:
        caught_up += await tail()  # outside the lock: what came while the rebuild ran
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                async with live.begin() as conn:
                    await _lock(conn, live_schema, model.tables)
                    locked = time.perf_counter()
                    await _outbox_drained(conn)
                    caught_up += await tail()
                    streams = await model.catch_up(conn, new) if model.catch_up else 0
                    await _move_tables(conn, model.tables, live_schema, new, trash)
                    locked_seconds = time.perf_counter() - locked
                break
            except DBAPIError as exc:
                if _sqlstate(exc) not in _BUSY or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
        await drop_copy(live, trash)
        await drop_copy(live, new)
    finally:
        await target.dispose()
        await live.dispose()
    return Switched(caught_up, streams, locked_seconds)


# Lock not available (NOWAIT), deadlock: the live tables are busy; try again shortly.
_BUSY = {"55P03", "40P01"}


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


async def _lock(conn: AsyncConnection, schema: str, tables: tuple[str, ...]) -> None:
    """All the live tables, or none: NOWAIT, so a busy writer makes us retry rather than
    queue (a waiting ACCESS EXCLUSIVE request would hold up every reader behind it, and two
    tables taken one by one against a writer taking them in the other order deadlock)."""
    names = ", ".join(f'"{schema}"."{t}"' for t in tables)
    await conn.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE NOWAIT"))


async def _outbox_drained(conn: AsyncConnection, timeout: float = 10.0) -> None:
    """Wait (bounded) until the service's relay has published what its writers committed.

    With the read-model tables locked no writer of this service can commit new events (each
    projects in the transaction that appends), so the outbox only shrinks; once it is empty,
    the topics' tail holds every event the live model has seen. Past the timeout the model's
    own catch-up (dialogs: from the event store) covers the rest.
    """
    deadline = time.monotonic() + timeout
    while await conn.scalar(text("SELECT EXISTS (SELECT 1 FROM outbox)")):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)


async def _move_tables(
    conn: AsyncConnection, tables: tuple[str, ...], live: str, new: str, trash: str
) -> None:
    await conn.execute(text(f'CREATE SCHEMA "{trash}"'))
    for table in tables:
        old_indexes = await _indexes(conn, live, table)
        await conn.execute(text(f'ALTER TABLE "{live}"."{table}" SET SCHEMA "{trash}"'))
        await conn.execute(text(f'ALTER TABLE "{new}"."{table}" SET SCHEMA "{live}"'))
        # LIKE named the copy's indexes itself; give them the live names, which migrations use.
        new_indexes = await _indexes(conn, live, table)
        by_shape = {shape: name for name, shape in new_indexes.items()}
        for name, shape in old_indexes.items():
            current = by_shape.get(shape)
            if current is not None and current != name:
                await conn.execute(text(f'ALTER INDEX "{live}"."{current}" RENAME TO "{name}"'))


async def _indexes(conn: AsyncConnection, schema: str, table: str) -> dict[str, str]:
    """Index name -> its definition without the names (to match a copy's to the live's)."""
    rows = await conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s AND tablename = :t"),
        {"s": schema, "t": table},
    )
    return {
        row.indexname: row.indexdef.split(" USING ", 1)[1]
        + (" unique" if row.indexdef.startswith("CREATE UNIQUE") else "")
        for row in rows
    }
