"""`openlines replay READ_MODEL [--from TIME] [--switch]`: rebuild a read model from the topics.

Builds a new copy beside the live model (the services keep serving), then either reports how
it differs from the live one (rows and a checksum per table; the copy is dropped) or, with
`--switch`, makes it the live model and drops the old one (openlines.replay.rebuild says how).
Database and broker are resolved as for `openlines deadletters` and `openlines tail`.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from openlines.cli.commands.tail import add_broker_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay", help="rebuild a read model from the topics beside the live one"
    )
    parser.add_argument("read_model", help="dialogs, crm-link, notify, ... (`list`: all)")
    parser.add_argument(
        "--from", dest="since", type=parse_time, default=None, help="ISO time to start at"
    )
    parser.add_argument("--switch", action="store_true", help="make the copy the live model")
    parser.add_argument("--keep", action="store_true", help="keep the copy (without --switch)")
    parser.add_argument("--schema", default=None, help="the live schema (default: the model's)")
    parser.add_argument("--database-url", default=None, help="libpq URL of the services' database")
    add_broker_arguments(parser)
    parser.set_defaults(handler=run)


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from openlines.replay.models import read_models

    models = read_models()
    if args.read_model == "list":
        for name, model in models.items():
            print(f"{name}: schema {model.schema}, topics {', '.join(model.topics)}")
        return 0
    if args.read_model not in models:
        raise SystemExit(f"unknown read model {args.read_model!r}; known: {', '.join(models)}")
    if args.switch and args.since is not None:
        raise SystemExit("--switch rebuilds the whole model: it cannot start --from a time")
    return asyncio.run(_run(args, models[args.read_model]))


async def _run(args: argparse.Namespace, model: object) -> int:
    from rich.console import Console
    from rich.table import Table

    from openlines.cli.commands.deadletters import resolve_database_url
    from openlines.cli.commands.tail import resolve_bootstrap
    from openlines.kit.db.engine import create_engine
    from openlines.kit.topics import TopicNames
    from openlines.replay.progress import event_progress
    from openlines.replay.rebuild import compare, drop_copy, rebuild, switch
    from openlines.replay.registry import ReadModel

    assert isinstance(model, ReadModel)
    console = Console()
    database_url = resolve_database_url(args.database_url, args.home)
    bootstrap = resolve_bootstrap(args.bootstrap, args.home)
    names = TopicNames(args.namespace)
    with event_progress(console) as bar:
        built = await rebuild(
            model,
            database_url=database_url,
            bootstrap=bootstrap,
            names=names,
            live_schema=args.schema,
            since=args.since,
            progress=bar.update,
        )
    rate = built.events / built.seconds if built.seconds else 0.0
    console.print(
        f"rebuilt {model.name} into schema {built.new_schema}: "
        f"{built.events:,} events in {built.seconds:.1f}s ({rate:,.0f} events/s)"
    )
    engine = create_engine(database_url, built.live_schema, pool_size=1)
    try:
        if args.switch:
            done = await switch(built, database_url=database_url, bootstrap=bootstrap, names=names)
            console.print(
                f"switched: {model.name} now reads the rebuilt tables "
                f"(caught up {done.caught_up_events} events and {done.caught_up_streams} "
                f"streams under a {done.locked_seconds * 1000:.0f} ms lock); old tables dropped"
            )
            return 0
        rows = await compare(engine, built)
        table = Table("table", "live rows", "rebuilt rows", "live checksum", "rebuilt checksum", "")
        for name, live, new in rows:
            same = live == new
            table.add_row(
                name,
                f"{live.rows:,}",
                f"{new.rows:,}",
                live.checksum[:12],
                new.checksum[:12],
                "same" if same else "[red]DIFFERENT[/]",
            )
        console.print(table)
        different = [name for name, live, new in rows if live != new]
        console.print(f"differences: {', '.join(different) if different else 'none'}")
        if args.keep:
            console.print(f"the copy stays in schema {built.new_schema}")
        else:
            await drop_copy(engine, built.new_schema)
        return 0
    finally:
        await engine.dispose()
