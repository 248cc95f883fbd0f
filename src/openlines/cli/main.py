"""The `openlines` console command.

Each sub-command lives in its own module under `openlines.cli.commands` and exposes
`register(subparsers)`; the module adds its parser and sets `handler` (a callable taking the
parsed namespace and returning an exit code). Discovery keeps this file free of edits when a
command is added.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from openlines.cli import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openlines", description="openlines suite")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.handler(args) or 0)


if __name__ == "__main__":
    main()
