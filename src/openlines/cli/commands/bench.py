"""`openlines bench kit|e2e|writer|search|replay|all`: figures, each beside a same-run
baseline."""

from __future__ import annotations

import argparse
import statistics
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from openlines.kit import eventloop

if TYPE_CHECKING:
    from openlines.bench.e2e import E2eReport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("bench", help="run benchmarks (each beside a same-run baseline)")
    parser.add_argument(
        "suite",
        choices=["kit", "e2e", "writer", "search", "replay", "all"],
        nargs="?",
        default="all",
    )
    parser.add_argument("--events", type=int, default=50_000, help="kit: events per measurement")
    parser.add_argument(
        "--messages", type=int, default=5000, help="writer: messages in the dialog replied to"
    )
    parser.add_argument(
        "--dialogs", type=int, default=100_000, help="search: dialogs in the read model"
    )
    parser.add_argument(
        "--messages-per-dialog", type=int, default=10, help="search: messages of each dialog"
    )
    parser.add_argument("--rate", type=int, default=100, help="e2e: new dialogs per second")
    parser.add_argument("--duration", type=float, default=30.0, help="e2e: seconds of load")
    parser.add_argument(
        "--stack-events",
        type=int,
        default=100_000,
        help="replay: dialog events on the stack that `openlines replay dialogs` rebuilds",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    console = Console()
    if args.suite in ("kit", "all"):
        _run_kit(args, console)
    if args.suite in ("writer", "all"):
        _run_writer(args, console)
    if args.suite in ("search", "all"):
        _run_search(args, console)
    if args.suite in ("e2e", "all"):
        _run_e2e(args, console)
    if args.suite in ("replay", "all"):
        _run_replay_stack(args, console)
    return 0


def _run_replay_stack(args: argparse.Namespace, console: Console) -> None:
    from openlines.bench.infra import bench_infra
    from openlines.bench.replay_stack import replay_on_a_stack

    with bench_infra() as infra:
        console.print(f"broker {infra.kafka_bootstrap}, database {infra.database_url}")
        run = eventloop.run(
            replay_on_a_stack(
                infra.database_url,
                infra.kafka_bootstrap,
                args.stack_events,
                timeout=3600,
                say=lambda line: console.print(line, markup=False, highlight=False),
            )
        )
    ratio = run.rebuild_rate / run.raw_fetch_rate if run.raw_fetch_rate else 0.0
    table = Table(title=f"openlines replay dialogs on a stack of {run.events:,} events")
    for col in ("measurement", "value"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    table.add_row(
        "dialogs / events written (event store + live projection)",
        f"{run.dialogs:,} / {run.events:,}",
    )
    table.add_row("writing them as the writers do", f"{run.fill_seconds:.1f} s")
    table.add_row("rebuild, as the command reports it", f"{run.rebuild_rate:,.0f} events/s")
    table.add_row(
        "raw aiokafka fetch of the same topic, same run", f"{run.raw_fetch_rate:,.0f} events/s"
    )
    table.add_row("ratio", f"{ratio:.2f}")
    table.add_row(
        "`openlines replay dialogs` (compare), whole command", f"{run.compare.seconds:.1f} s"
    )
    table.add_row(
        "`openlines replay dialogs --switch`, whole command", f"{run.switch.seconds:.1f} s"
    )
    table.add_row(
        "API requests during the switch (status: count)",
        ", ".join(f"{k}: {v}" for k, v in sorted(run.statuses.items())),
    )
    console.print(table)


def _run_writer(args: argparse.Namespace, console: Console) -> None:
    from openlines.bench import writer
    from openlines.bench.infra import bench_infra

    with bench_infra() as infra:
        report = eventloop.run(writer.run(infra, messages=args.messages))
    table = Table(title=f"a reply on a dialog of {report.messages:,} messages")
    for col in ("measurement", "mean ms", "p50 ms", "max ms"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for t in report.timings:
        table.add_row(t.name, f"{t.mean:.1f}", f"{t.p50:.1f}", f"{t.worst:.1f}")
    console.print(table)


def _run_search(args: argparse.Namespace, console: Console) -> None:
    from openlines.bench import search
    from openlines.bench.infra import bench_infra

    with bench_infra() as infra:
        report = eventloop.run(
            search.run(infra, dialogs=args.dialogs, per_dialog=args.messages_per_dialog)
        )
    table = Table(
        title=f"the dialog list on {report.dialogs:,} dialogs / {report.messages:,} messages "
        f"(loaded with COPY in {report.load_seconds:.0f}s); target p99 < "
        f"{search.TARGET_P99_MS:.0f} ms"
    )
    for col in ("query", "p50 ms", "p99 ms", "p99 / baseline", "rows", "p99 < target"):
        table.add_column(col, justify="left" if col == "query" else "right")
    base = report.baseline.p99
    for t in report.timings:
        table.add_row(
            t.name,
            f"{t.p50:.1f}",
            f"{t.p99:.1f}",
            f"{t.p99 / base:.1f}",
            f"{t.found:.1f}",
            "yes" if t.p99 < search.TARGET_P99_MS else "NO",
        )
    console.print(table)


def _run_e2e(args: argparse.Namespace, console: Console) -> None:
    from openlines.bench import e2e

    report = eventloop.run(e2e.run(rate=args.rate, duration=args.duration, console=console))
    table = Table(
        title=f"openlines end to end: {args.rate} new dialogs/s for {args.duration:.0f}s "
        f"({report.sent} accepted)"
    )
    for col in ("latency: webhook accepted ->", "seen", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col.startswith("latency") else "right")
    for name, samples in (
        ("DialogAssigned in the API (40 ms polls)", report.api_latency_ms),
        ("DialogAssigned on the WebSocket", report.ws_latency_ms),
    ):
        p = e2e.percentiles(samples)
        table.add_row(
            name,
            f"{len(samples)}/{report.sent}",
            f"{p['p50']:.0f}",
            f"{p['p95']:.0f}",
            f"{p['p99']:.0f}",
        )
    console.print(table)
    ratio = statistics.median(report.ingest_ratios) if report.ingest_ratios else 0.0
    console.print(
        f"ingest {report.ingest_rps:,.0f} webhooks/s vs raw aiohttp+aiokafka "
        f"{report.raw_rps:,.0f}/s (means of {len(report.ingest_ratios)} alternating rounds, "
        f"both on the {eventloop.loop_kind()} loop): ratio {ratio:.2f}, the median of the "
        f"rounds' {', '.join(f'{r:.2f}' for r in report.ingest_ratios)} (target >= 0.6)"
    )
    rss = Table(title="peak RSS during the latency run")
    rss.add_column("process")
    rss.add_column("MiB", justify="right")
    for name, mib in sorted(report.peak_rss_mb.items()):
        rss.add_row(name, f"{mib:.0f}")
    console.print(rss)
    _print_cpu(report, console)


def _print_cpu(report: E2eReport, console: Console) -> None:
    if not report.cpu_seconds or not report.sent:
        return
    total = sum(report.cpu_seconds.values())
    assigned = max(len(report.ws_latency_ms), len(report.api_latency_ms))
    caveat = (
        ""
        if assigned >= report.sent
        else f"; only {assigned} of {report.sent} were assigned in the window, so a dialog's "
        "full cost is higher"
    )
    cpu = Table(
        title=f"CPU from the first webhook until all were assigned (at most 30 s after the last) "
        f"({report.cpu_window:.0f}s): {total / report.cpu_window:.2f} cores busy, "
        f"{1000 * total / report.sent:.0f} ms per accepted dialog{caveat}"
    )
    for col in ("process", "CPU s", "ms per dialog"):
        cpu.add_column(col, justify="left" if col == "process" else "right")
    for name, seconds in sorted(report.cpu_seconds.items(), key=lambda kv: -kv[1]):
        cpu.add_row(name, f"{seconds:.1f}", f"{1000 * seconds / report.sent:.1f}")
    console.print(cpu)


def _run_kit(args: argparse.Namespace, console: Console) -> None:
    from openlines.bench import replay
    from openlines.bench.infra import bench_infra

    with bench_infra() as infra:
        console.print(f"broker {infra.kafka_bootstrap}, database {infra.database_url}")
        results = eventloop.run(replay.run_with_kit(infra, n=args.events))
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
