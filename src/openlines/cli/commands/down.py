"""`openlines down`: stop a local stack started by `openlines up`, from any shell."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("down", help="stop the local stack")
    parser.add_argument("--home", type=Path, default=None, help="as given to `openlines up`")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait before killing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every command module is imported for each `openlines` call.
    from rich.console import Console

    from openlines.stack.state import StackPaths, default_home, stop_stack

    paths = StackPaths((args.home or default_home()).resolve())
    console = Console()
    if stop_stack(paths, timeout=args.timeout):
        console.print(f"stopped the stack in {paths.home}")
    else:
        console.print(f"no stack running in {paths.home}")
    return 0
