"""`openlines export events DIR [--from] [--to] [--topic]`: the topics as Parquet, for analysts.

One file per event type, `DIR/<topic>/<Type>.parquet`, with typed columns from the JSON
Schemas (openlines.replay.export). Needs the `openlines[analytics]` extra (pyarrow). The broker
is resolved as for `openlines tail`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from openlines.cli.commands.replay import parse_time
from openlines.cli.commands.tail import add_broker_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="export the topics as Parquet files")
    what = parser.add_subparsers(dest="what", required=True)
    events = what.add_parser("events", help="one Parquet file per event type")
    events.add_argument("directory", type=Path)
    events.add_argument("--from", dest="since", type=parse_time, default=None, help="ISO time")
    events.add_argument("--to", dest="until", type=parse_time, default=None, help="ISO time")
    events.add_argument(
        "--topic",
        action="append",
        dest="topics",
        help="e.g. dialogs or openlines.dialogs.v1 (repeatable; default: all)",
    )
    add_broker_arguments(events)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SystemExit("export needs pyarrow: pip install 'openlines[analytics]'") from None
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from openlines.cli.commands.tail import logical_topics, resolve_bootstrap
    from openlines.kit.topics import TopicNames
    from openlines.replay.export import export_events
    from openlines.replay.progress import event_progress

    console = Console()
    topics = [t for t in logical_topics(args.topics) if not t.endswith(".dlq")]
    with event_progress(console) as bar:
        stats = await export_events(
            args.directory,
            bootstrap=resolve_bootstrap(args.bootstrap, args.home),
            names=TopicNames(args.namespace),
            topics=topics,
            since=args.since,
            until=args.until,
            progress=bar.update,
        )
    table = Table("topic/type", "events", "file")
    for (key, count), path in zip(stats.by_type.items(), stats.files, strict=True):
        table.add_row(key, f"{count:,}", str(path))
    console.print(table)
    console.print(
        f"{stats.events:,} events in {stats.seconds:.1f}s ({stats.rate:,.0f} events/s)"
        + (f", {stats.undecodable} undecodable skipped" if stats.undecodable else "")
    )
    return 0
