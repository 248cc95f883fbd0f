"""`openlines say --chat 42 --name Ann "text"`: a sandbox customer writes.

Builds a Telegram Update and posts it to the gateway's `/webhooks/telegram/<channel>` with the
channel's webhook secret from the lines config, exactly as Telegram would.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openlines.events.lines import LinesConfig

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_REPO_LINES = Path(__file__).resolve().parents[4] / "config" / "demo.yaml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("say", help="a sandbox customer writes (Telegram webhook)")
    parser.add_argument("text", help="what the customer writes")
    parser.add_argument(
        "--url",
        default=os.environ.get("OPENLINES_URL", "http://127.0.0.1:8080"),
        help="base URL of the gateway (default $OPENLINES_URL or http://127.0.0.1:8080)",
    )
    parser.add_argument("--channel", default="tg-demo", help="Telegram channel id")
    parser.add_argument("--chat", type=int, required=True, help="Telegram chat id")
    parser.add_argument("--name", default="Customer", help="the customer's name")
    parser.add_argument("--user-id", type=int, default=None, help="default: the chat id")
    parser.add_argument("--username", default=None)
    parser.add_argument("--message-id", type=int, default=None, help="default: time-based")
    parser.add_argument("--reply-to", type=int, default=None, help="message id replied to")
    parser.add_argument("--secret", default=None, help="default: the channel's, from config")
    parser.add_argument("--lines-file", default=None, help="default: $OPENLINES_LINES_FILE")
    parser.set_defaults(handler=run)


def load_lines_config(path: str | None, *, required: bool = True) -> LinesConfig | None:
    """The lines config: `path`, $OPENLINES_LINES_FILE, ./config/demo.yaml, or the repo's."""
    from openlines.events.lines import load_lines

    candidates = [path] if path else [os.environ.get("OPENLINES_LINES_FILE")]
    if not path and not candidates[0]:
        candidates = ["config/demo.yaml", str(_REPO_LINES)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return load_lines(candidate)
    if required:
        raise SystemExit(f"no lines config found (tried {', '.join(map(str, candidates))})")
    return None


_ids = itertools.count()


def unique_id() -> int:
    # Microseconds since the epoch: unique across quick successive calls, and increasing
    # like Telegram's ids (and still exact in a JSON double).
    return time.time_ns() // 1000 + next(_ids)


def telegram_update(
    *,
    chat_id: int,
    text: str,
    name: str,
    user_id: int | None = None,
    username: str | None = None,
    message_id: int | None = None,
    reply_to: int | None = None,
) -> dict[str, Any]:
    first, _, last = name.strip().partition(" ")
    sender: dict[str, Any] = {"id": user_id if user_id is not None else chat_id, "is_bot": False}
    sender["first_name"] = first or "Customer"
    if last:
        sender["last_name"] = last
    if username:
        sender["username"] = username
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else unique_id(),
        "from": sender,
        "chat": {"id": chat_id, "type": "private", "first_name": sender["first_name"]},
        "date": int(time.time()),
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "date": 0, "chat": {"id": chat_id}}
    return {"update_id": unique_id(), "message": message}


def run(args: argparse.Namespace) -> int:
    # A widget channel: the signed widget webhook instead (openlines.cli.say_widget).
    config = load_lines_config(args.lines_file, required=args.secret is None)
    widget = config.channel(args.channel) if config is not None else None
    if widget is not None and widget[1].type == "widget":
        from openlines.cli.say_widget import say_widget

        return say_widget(args, widget[1].secret)
    secret = args.secret
    if secret is None:
        lines = load_lines_config(args.lines_file)
        assert lines is not None
        found = lines.channel(args.channel)
        if found is None or found[1].type != "telegram":
            print(f"no telegram channel {args.channel!r} in the lines config", file=sys.stderr)
            return 2
        secret = found[1].secret
    update = telegram_update(
        chat_id=args.chat,
        text=args.text,
        name=args.name,
        user_id=args.user_id,
        username=args.username,
        message_id=args.message_id,
        reply_to=args.reply_to,
    )
    url = f"{args.url.rstrip('/')}/webhooks/telegram/{args.channel}"
    request = urllib.request.Request(
        url,
        data=json.dumps(update).encode(),
        method="POST",
        headers={"Content-Type": "application/json", SECRET_HEADER: secret},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {url}: {exc} (is the stack running? `openlines up`)", file=sys.stderr)
        return 1
    print(f"{status} {body}")
    return 0 if 200 <= status < 300 else 1
