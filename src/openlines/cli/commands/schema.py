"""``openlines schema export DIR``: write the published event schemas (JSON Schema + AsyncAPI)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("schema", help="published event schemas")
    sub = parser.add_subparsers(dest="schema_command", required=True)
    export = sub.add_parser(
        "export",
        help="write a JSON Schema per event type and an AsyncAPI document",
        description="Writes DIR/schemas/<topic>/<Type>.v<version>.json and DIR/asyncapi.json.",
    )
    export.add_argument("dir", type=Path, metavar="DIR")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from openlines.events.schema import export  # keep `openlines --help` fast

    written = export(args.dir)
    for path in written:
        print(path)
    print(f"{len(written)} files written to {args.dir}")
    return 0
