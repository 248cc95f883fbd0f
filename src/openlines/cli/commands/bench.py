"""`openlines bench kit|all`: throughput figures, each beside a same-run baseline."""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("bench", help="run benchmarks (each beside a same-run baseline)")
    parser.add_argument("suite", choices=["kit", "all"], nargs="?", default="all")
    parser.add_argument("--events", type=int, default=50_000, help="events per measurement")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from openlines.bench import kit
    from openlines.bench.infra import bench_infra

    console = Console()
    with bench_infra() as infra:
        console.print(f"broker {infra.kafka_bootstrap}, database {infra.database_url}")
        results = asyncio.run(kit.run(infra, n=args.events))
    table = Table(title=f"openlines kit benchmark ({args.events} events)")
    for col in ("measurement", "events/s", "baseline", "baseline/s", "ratio"):
        table.add_column(col, justify="right" if col.endswith(("/s", "ratio")) else "left")
    for r in results:
        table.add_row(
            r.name, f"{r.rate:,.0f}", r.baseline_name, f"{r.baseline_rate:,.0f}", f"{r.ratio:.2f}"
        )
    console.print(table)
    for r in results:
        for key, value in r.notes.items():
            console.print(f"  {r.name} — {key}: {value}")
    return 0
