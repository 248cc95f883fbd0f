"""`openlines tail`: live events from every topic, one line each, until Ctrl-C.

The broker is `--bootstrap`, else $OPENLINES_KAFKA_BOOTSTRAP, else the one of the stack that
`openlines up` runs (its state file), else 127.0.0.1:9092.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from rich.console import Console

    from openlines.events import Envelope

# Payload fields worth seeing first; the rest follow in their own order.
_FIRST = ("text", "direction", "status", "operator_id", "assignee_id", "reason", "customer.name")
_TOPIC_STYLES = {
    "inbound": "cyan",
    "dialogs": "green",
    "dialogs.commands": "magenta",
    "routing": "yellow",
    "crm": "blue",
    "outbound": "bright_cyan",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tail", help="pretty-print live events from all topics")
    parser.add_argument(
        "--topic",
        action="append",
        dest="topics",
        help="e.g. dialogs or openlines.dialogs.v1 (repeatable; default: all, DLQs included)",
    )
    parser.add_argument("--from-beginning", action="store_true", help="replay what is stored")
    parser.add_argument("--max", type=int, default=None, help="exit after this many events")
    add_broker_arguments(parser)
    parser.set_defaults(handler=run)


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the topics are: --bootstrap (else the environment, else the stack at --home) and
    --namespace (the physical topic prefix)."""
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers")
    parser.add_argument(
        "--namespace",
        default=os.environ.get("OPENLINES_TOPIC_NAMESPACE", ""),
        help="physical topic prefix (default $OPENLINES_TOPIC_NAMESPACE)",
    )
    parser.add_argument("--home", default=None, help="stack home, as given to `openlines up`")


def resolve_bootstrap(explicit: str | None, home: str | None = None) -> str:
    if explicit:
        return explicit
    if env := os.environ.get("OPENLINES_KAFKA_BOOTSTRAP"):
        return env
    from pathlib import Path

    from openlines.stack.state import StackPaths, default_home, read_state

    state = read_state(StackPaths(Path(home).resolve() if home else default_home()))
    bootstrap = ((state or {}).get("kafka") or {}).get("bootstrap")
    return str(bootstrap) if bootstrap else "127.0.0.1:9092"


def logical_topics(names: list[str] | None) -> list[str]:
    """`dialogs`, `dialogs.dlq` or full names → logical topic names."""
    from openlines.events.topics import TOPICS, dlq_topic

    if not names:
        return [t for name in TOPICS for t in (name, dlq_topic(name))]
    out = []
    for name in names:
        base, dlq = (name[:-4], True) if name.endswith(".dlq") else (name, False)
        full = base if base in TOPICS else f"openlines.{base}.v1"
        if full not in TOPICS:
            raise SystemExit(f"unknown topic {name!r}; known: {', '.join(TOPICS)}")
        out.append(dlq_topic(full) if dlq else full)
    return out


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    bootstrap = resolve_bootstrap(args.bootstrap, args.home)
    topics = logical_topics(args.topics)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a tail ends
        asyncio.run(_tail(console, bootstrap, args.namespace, topics, args))
    return 0


async def _tail(
    console: Console, bootstrap: str, namespace: str, topics: list[str], args: argparse.Namespace
) -> None:
    from aiokafka import AIOKafkaConsumer

    physical = [namespace + t for t in topics]
    consumer = AIOKafkaConsumer(
        *physical,
        bootstrap_servers=bootstrap,
        group_id=None,  # a viewer: no group, no commits
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    await consumer.start()
    console.print(f"[dim]tailing {len(physical)} topics on {bootstrap} (Ctrl-C stops)[/]")
    seen = 0
    try:
        async for record in consumer:
            console.print(render(record, namespace), no_wrap=True, overflow="ellipsis")
            seen += 1
            if args.max is not None and seen >= args.max:
                return
    finally:
        await consumer.stop()


def render(record: ConsumerRecord[bytes, bytes], namespace: str = "") -> Any:
    """One event as one line: time, topic, type, stream id, the interesting payload fields."""
    from rich.text import Text

    from openlines.events import DecodeError, decode

    topic = record.topic[len(namespace) :] if record.topic.startswith(namespace) else record.topic
    short = topic.removeprefix("openlines.").replace(".v1", "")
    line = Text()
    try:
        env = decode(record.value or b"", record.headers, topic=topic)
    except DecodeError as exc:
        line.append(f"{'?':<12} ", style="dim")
        line.append(f"{short:<17}", style="red")
        line.append(f" undecodable: {exc}", style="red")
        return line
    line.append(env.occurred_at.astimezone().strftime("%H:%M:%S.%f")[:-3] + " ", style="dim")
    line.append(f"{short:<17}", style=_TOPIC_STYLES.get(short.removesuffix(".dlq"), "red"))
    line.append(f" {env.type:<24}", style="bold")
    line.append(f" {_short_id(env.stream_id):<20} ", style="dim")
    line.append(summary(env))
    return line


def summary(env: Envelope[Any], width: int = 60) -> str:
    fields = _flatten(env.payload.model_dump(mode="json", exclude_none=True))
    fields = {k: v for k, v in fields.items() if v not in ("", [], {}) and v != env.stream_id}
    order = [k for k in _FIRST if k in fields] + [k for k in fields if k not in _FIRST]
    parts = []
    for key in order:
        value = fields[key]
        shown = f"{len(value)} items" if isinstance(value, list) else str(value)
        if len(shown) > width:
            shown = shown[: width - 1] + "…"
        parts.append(f"{key}={shown!r}" if isinstance(value, str) else f"{key}={shown}")
    return " ".join(parts)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _short_id(stream_id: str) -> str:
    # UUIDs are long; the first block is enough to follow a dialog by eye.
    return stream_id[:8] + "…" if len(stream_id) == 36 and stream_id.count("-") == 4 else stream_id
