"""`openlines webhooks listen --port N --secret S`: a small webhook receiver for the demo and
for debugging a subscription. It checks each delivery's `X-Openlines-Signature` (401 when it
does not match), prints one line per event, and marks a delivery it has seen before (delivery
is at least once: a real receiver dedupes by `X-Openlines-Delivery` the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web
    from rich.console import Console


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("webhooks", help="webhook tools (a local receiver)")
    sub = parser.add_subparsers(dest="webhooks_command", required=True)
    listen = sub.add_parser("listen", help="receive webhooks, verify them, print the events")
    listen.add_argument("--port", type=int, required=True, help="port to listen on")
    listen.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    listen.add_argument("--path", default="/", help="path that receives (default /: any path)")
    listen.add_argument(
        "--secret",
        default=os.environ.get("OPENLINES_WEBHOOK_SECRET"),
        help="the subscription's secret (default $OPENLINES_WEBHOOK_SECRET)",
    )
    listen.add_argument("--max", type=int, default=None, help="exit after this many events")
    listen.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    if not args.secret:
        print("a --secret (or $OPENLINES_WEBHOOK_SECRET) is needed to verify", file=sys.stderr)
        return 2
    console = Console(highlight=False)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how listening ends
        asyncio.run(_listen(console, args))
    return 0


class _Listener:
    def __init__(self, console: Console, secret: str, limit: int | None) -> None:
        self.console = console
        self.secret = secret
        self.limit = limit
        self.seen: set[str] = set()
        self.events = 0
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from openlines.cli.commands.tail import summary
        from openlines.events import DecodeError, decode
        from openlines.events.webhooks import (
            DELIVERY_HEADER,
            EVENT_HEADER,
            SIGNATURE_HEADER,
            SignatureError,
            verify,
        )

        body = await request.read()
        delivery = request.headers.get(DELIVERY_HEADER, "?")
        try:
            verify(self.secret, body, request.headers.get(SIGNATURE_HEADER))
        except SignatureError as exc:
            self.console.print(f"[red]refused[/] {delivery}: {exc}")
            return web.json_response({"error": str(exc)}, status=401)
        try:
            env = decode(body)
        except DecodeError as exc:
            self.console.print(f"[red]undecodable[/] {delivery}: {exc}")
            return web.json_response({"error": str(exc)}, status=400)
        again = delivery in self.seen
        self.seen.add(delivery)
        self.console.print(
            f"{env.occurred_at.astimezone():%H:%M:%S} [bold]{request.headers.get(EVENT_HEADER)}[/]"
            f" {delivery}{' [yellow](duplicate)[/]' if again else ''} stream={env.stream_id}"
            f" {summary(env)}",
            no_wrap=True,
            overflow="ellipsis",
            markup=True,
        )
        if not again:
            self.events += 1
            if self.limit is not None and self.events >= self.limit:
                self.done.set()
        return web.json_response({"received": delivery})


async def _listen(console: Console, args: argparse.Namespace) -> None:
    from aiohttp import web

    listener = _Listener(console, args.secret, args.max)
    app = web.Application()
    path = args.path.rstrip("/")
    app.router.add_post(path or "/{tail:.*}", listener.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    console.print(
        f"[dim]listening on http://{args.host}:{args.port}{path or '/'} (Ctrl-C stops)[/]"
    )
    try:
        await listener.done.wait()
    finally:
        await runner.cleanup()
