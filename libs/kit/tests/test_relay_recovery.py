"""The relay outlives its database connections dying under it (a Postgres restart)."""

from __future__ import annotations

import asyncio

import psycopg

from openlines.kit.db.engine import create_engine, libpq_dsn

from .helpers import Kit, read_all, renamed


async def test_relay_survives_its_pooled_connections_being_terminated(kit: Kit) -> None:
    """What a Postgres restart does to a service: every pooled connection is dead on its next
    use, and SQLAlchemy raises its own OperationalError (not psycopg's). The relay must wait
    for the database and go on, not end (which took the whole service down)."""
    topic = await kit.new_topic()
    relay = kit.relay()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with kit.engine.begin() as conn:
            await kit.store.append(conn, "before", 0, [renamed(1, "before")], topic=topic)
        async with asyncio.timeout(20):
            while relay.published < 1:
                await asyncio.sleep(0.05)
        # The kit.engine's connections (named after the schema), as a server restart would.
        async with await psycopg.AsyncConnection.connect(
            libpq_dsn(kit.database_url), autocommit=True
        ) as admin:
            cur = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (f"openlines-{kit.schema}",),
            )
            row = await cur.fetchone()
            assert row is not None and row[0] >= 1
        # Written through fresh connections: the relay finds its pooled one dead.
        writer = create_engine(kit.database_url, kit.schema, pool_size=1)
        try:
            async with writer.begin() as conn:
                await kit.store.append(conn, "after", 0, [renamed(1, "after")], topic=topic)
        finally:
            await writer.dispose()
        async with asyncio.timeout(30):
            while relay.published < 2:
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
        records = await read_all(kit.bootstrap, topic, 2)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    assert len(records) >= 2
