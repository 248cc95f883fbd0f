"""The write side's tables apart from the read model: a rebuild (in place or into another
schema) never touches them, and the migration that separated them kept what was recorded."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import Table, create_engine, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.app import MIGRATIONS
from openlines.dialogs.domain.feedback import rating_request_id
from openlines.dialogs.projection import rebuild
from openlines.dialogs.tables import read_model, write_side
from openlines.events.catalog import DeliveryStatus
from openlines.kit.db.engine import sqlalchemy_url
from openlines.kit.db.migrate import KIT_MIGRATIONS, KIT_VERSION_TABLE, migrate

from .dialogs_stack import DialogsStack
from .test_dialogs_reply import dispatched, receipt, send


async def _rows(conn: AsyncConnection, tables: list[Table]) -> dict[str, list[Any]]:
    return {
        table.name: sorted((await conn.execute(select(table))).all(), key=str) for table in tables
    }


async def test_the_read_model_is_rebuilt_beside_the_live_one_and_the_write_side_stays(
    stack: DialogsStack,
) -> None:
    first = await stack.open_dialog("3101")
    message_id = (await send(stack, first, "hi", "c-1")).body["message_id"]
    await stack.wait_handled(await receipt(stack, "3101", "p-2", DeliveryStatus.DELIVERED))
    await stack.wait_handled(await dispatched(stack, first, message_id, provider="p-1"))
    await stack.post(f"/api/v1/dialogs/{first}/close", "ann")
    await stack.open_dialog("3101", "again")
    reads, writes = list(read_model.sorted_tables), list(write_side.sorted_tables)
    engine = stack.runtime.engine
    async with engine.connect() as conn:
        live_reads, live_writes = await _rows(conn, reads), await _rows(conn, writes)
    assert [len(live_writes[t]) for t in ("conversations", "pending_receipts")] == [1, 1]
    assert len(live_writes["inbound_messages"]) == 2
    # The reply, and the rating request the demo line sends on close (not sent: no provider).
    request = rating_request_id(first)
    [sent] = [m for m in live_writes["outbound_messages"] if m.message_id != request]
    assert sent.provider_message_id == "p-1"

    beside = f"{stack.runtime.settings.db_schema}_next"
    try:
        async with engine.begin() as conn:
            assert await rebuild(conn, stack.runtime.event_store, into=beside) == 2
        async with engine.connect() as conn:
            await conn.execution_options(schema_translate_map={None: beside})  # (in place)
            assert await _rows(conn, reads) == live_reads
        async with engine.connect() as conn:
            assert await _rows(conn, reads) == live_reads  # the live one is left alone
            assert await _rows(conn, writes) == live_writes
            names = text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s")
            found = await conn.execute(names, {"s": beside})
            assert sorted(found.scalars()) == ["dialogs", "messages"]
        async with engine.begin() as conn:  # and in place, as before
            assert await rebuild(conn, stack.runtime.event_store) == 2
        async with engine.connect() as conn:
            assert await _rows(conn, reads) == live_reads
            assert await _rows(conn, writes) == live_writes
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{beside}" CASCADE'))


def _upgrade_to(url: str, schema: str, script_location: Path, version_table: str, rev: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes.update(schema=schema, version_table=version_table)
    engine = create_engine(sqlalchemy_url(url), connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, rev)
    finally:
        engine.dispose()


def test_the_migration_fills_the_write_side_from_what_was_recorded(
    database_url: str, db_schema: str
) -> None:
    _upgrade_to(database_url, db_schema, KIT_MIGRATIONS, KIT_VERSION_TABLE, "head")
    _upgrade_to(database_url, db_schema, MIGRATIONS, "alembic_version", "dialogs0001")
    dialog_id, inbound, sent, queued, system = (uuid.uuid4() for _ in range(5))
    key = "tg-demo:77"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(db_schema)))
        message = (
            "INSERT INTO messages (message_id, dialog_id, seq, direction, external_message_id,"
            " conversation_key, provider_message_id, sent_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
        )
        conn.execute(message, (inbound, dialog_id, 2, "in", "m-1", key, None))
        conn.execute(message, (sent, dialog_id, 3, "out", None, key, "p-1"))
        conn.execute(message, (queued, dialog_id, 4, "out", None, key, None))
        conn.execute(message, (system, dialog_id, 5, "system", None, key, None))
        conn.execute("INSERT INTO conversations VALUES (%s, %s)", (key, dialog_id))
        conn.execute(
            "INSERT INTO pending_receipts VALUES (%s, 'p-9', 'delivered', NULL, now())", (key,)
        )

    migrate(database_url, db_schema, MIGRATIONS)

    with psycopg.connect(database_url) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(db_schema)))
        assert conn.execute("SELECT * FROM inbound_messages").fetchall() == [
            (key, "m-1", dialog_id, inbound)
        ]
        assert sorted(
            conn.execute("SELECT * FROM outbound_messages").fetchall(), key=str
        ) == sorted([(sent, dialog_id, key, "p-1"), (queued, dialog_id, key, None)], key=str)
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (4,)
        assert conn.execute("SELECT * FROM conversations").fetchall() == [(key, dialog_id)]
        assert conn.execute("SELECT count(*) FROM pending_receipts").fetchone() == (1,)
