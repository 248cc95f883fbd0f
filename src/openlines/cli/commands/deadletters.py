"""`openlines deadletters list | redrive ID... | redrive --all`: what the relay could not publish.

The database is `--database-url`, else $OPENLINES_DATABASE_URL, else the one of the stack that
`openlines up` runs; the broker is resolved as for `openlines tail`. Every service schema with
a dead_letters table is searched unless `--schema` names one. A re-drive publishes with the
producer's record limit ($OPENLINES_KAFKA_MAX_RECORD_BYTES): a record still too large fails
again, stays listed, and the command exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "deadletters", help="list or re-drive outbox records the relay could not publish"
    )
    parser.add_argument("--database-url", default=None, help="libpq URL of the services' database")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers")
    parser.add_argument("--schema", default=None, help="one service schema (default: all)")
    parser.add_argument("--home", default=None, help="stack home, as given to `openlines up`")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list dead letters")
    redrive = actions.add_parser("redrive", help="publish dead letters again")
    redrive.add_argument("ids", nargs="*", type=uuid.UUID, help="dead letter ids (from list)")
    redrive.add_argument("--all", action="store_true", help="every dead letter")
    parser.set_defaults(handler=run)


def resolve_database_url(explicit: str | None, home: str | None = None) -> str:
    if explicit:
        return explicit
    if env := os.environ.get("OPENLINES_DATABASE_URL"):
        return env
    from openlines.stack.state import StackPaths, default_home, read_state

    state = read_state(StackPaths(Path(home).resolve() if home else default_home()))
    url = ((state or {}).get("postgres") or {}).get("url")
    if not url:
        raise SystemExit("no database: pass --database-url or set OPENLINES_DATABASE_URL")
    return str(url)


def run(args: argparse.Namespace) -> int:
    if args.action == "redrive" and bool(args.ids) == bool(args.all):
        raise SystemExit("redrive needs dead letter ids or --all (not both)")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import psycopg
    from rich.console import Console

    from openlines.kit.db.engine import libpq_dsn
    from openlines.kit.deadletters import list_dead_letters, schemas_with_dead_letters

    console = Console()
    dsn = libpq_dsn(resolve_database_url(args.database_url, args.home))
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        schemas = [args.schema] if args.schema else await schemas_with_dead_letters(conn)
        if args.action == "list":
            letters = await list_dead_letters(conn, schemas)
            for letter in letters:
                console.print(
                    f"{letter.id}  {letter.schema}  {letter.topic}  key={letter.key}"
                    f"  {letter.type}  event_id={letter.event_id}  {letter.size} bytes"
                    f"  {letter.failed_at:%Y-%m-%d %H:%M:%S}  {letter.error}",
                    soft_wrap=True,
                    highlight=False,
                    markup=False,
                )
            console.print(f"{len(letters)} dead letter(s)", style="dim")
            return 0
        return await _redrive(conn, args, schemas, console)


async def _redrive(conn: Any, args: argparse.Namespace, schemas: list[str], console: Any) -> int:
    from openlines.cli.commands.tail import resolve_bootstrap
    from openlines.kit.deadletters import redrive
    from openlines.kit.kafka.producer import create_producer
    from openlines.kit.settings import KitSettings

    producer = create_producer(
        resolve_bootstrap(args.bootstrap, args.home),
        client_id="openlines-deadletters",
        max_record_bytes=KitSettings().kafka_max_record_bytes,
    )
    await producer.start()
    try:
        outcomes = await redrive(conn, producer, schemas, None if args.all else args.ids)
    finally:
        await producer.stop()
    failed = [o for o in outcomes if o.error is not None]
    for outcome in outcomes:
        letter = outcome.letter
        if outcome.error is None:
            console.print(f"re-driven {letter.id} ({letter.type} to {letter.topic})", markup=False)
        else:
            console.print(
                f"FAILED {letter.id} ({letter.type}, {letter.size} bytes): {outcome.error};"
                " it stays in dead_letters",
                style="red",
                markup=False,
            )
    missing = set(args.ids or ()) - {o.letter.id for o in outcomes}
    for id_ in sorted(missing, key=str):
        console.print(f"not found (or being re-driven elsewhere): {id_}", style="red")
    return 1 if failed or missing else 0
