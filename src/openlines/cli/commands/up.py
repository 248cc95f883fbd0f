"""`openlines up`: the local stack (embedded Postgres, Tansu, topics, services)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("up", help="run the local stack (Ctrl-C stops it)")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="state, data and logs (default: $OPENLINES_HOME or .openlines in the repository)",
    )
    parser.add_argument(
        "--kafka-port",
        type=int,
        default=int(os.environ.get("OPENLINES_KAFKA_PORT", "9092")),
        help="broker port (0: any free port; default 9092)",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="run in the background; return once ready",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("OPENLINES_PORT_BASE", "8080")),
        help="gateway port; sandbox is +10, services +21..+26 (default 8080)",
    )
    parser.add_argument(
        "--lines", type=Path, default=None, help="lines file (default: config/demo.yaml)"
    )
    parser.add_argument(
        "--infra-only", action="store_true", help="only Postgres, Kafka and the topics"
    )
    parser.add_argument("--ready-timeout", type=float, default=90.0, help="seconds")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every command module is imported for each `openlines` call.
    from rich.console import Console

    from openlines.stack.state import default_home
    from openlines.stack.supervisor import StackConfig, Supervisor, start_detached

    config = StackConfig(
        home=(args.home or default_home()).resolve(),
        kafka_port=args.kafka_port,
        port_base=args.port_base,
        lines_file=args.lines.resolve() if args.lines else None,
        infra_only=args.infra_only,
        ready_timeout=args.ready_timeout,
    )
    console = Console()
    if args.detach:
        return start_detached(config, console)
    return Supervisor(config, console).run()
