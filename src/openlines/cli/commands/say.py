"""`openlines say --chat 42 --name Ann "text"`: a sandbox customer writes.

Builds a Telegram Update and posts it to the gateway's `/webhooks/telegram/<channel>` with the
channel's webhook secret from the lines config, exactly as Telegram would. For a WhatsApp
channel (`--channel wa-demo`) it posts a Cloud API notification to
`/webhooks/whatsapp/<channel>`, signed with the channel's app secret as Meta signs it
(`--chat` is then the customer's WhatsApp id, their phone number in digits).

`openlines say --channel mail-demo --from ann@example.com "text"` sends a real e-mail instead,
over SMTP to ingest's endpoint (the stack's port base + 28, or `--smtp host:port`).

`openlines say --chat 42 --press 5`: the customer presses the button "5" under the latest
message with buttons the chat got (e.g. the rating request): the sandbox provider sends the
webhook its `callback_query` update, as Telegram would.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
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
SIGNATURE_HEADER = "X-Hub-Signature-256"
_REPO_LINES = Path(__file__).resolve().parents[4] / "config" / "demo.yaml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "say", help="a sandbox customer writes (Telegram, WhatsApp or e-mail)"
    )
    parser.add_argument("text", nargs="?", help="what the customer writes")
    parser.add_argument(
        "--press",
        metavar="BUTTON",
        default=None,
        help="instead of writing, press the button with this text under the chat's latest"
        " message with buttons (e.g. 5 on the rating request)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("OPENLINES_URL", "http://127.0.0.1:8080"),
        help="base URL of the gateway (default $OPENLINES_URL or http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--channel", default="tg-demo", help="channel id (telegram, whatsapp or email)"
    )
    parser.add_argument(
        "--chat", type=int, default=None, help="Telegram chat id, or WhatsApp id (digits)"
    )
    parser.add_argument("--name", default="Customer", help="the customer's name")
    parser.add_argument("--user-id", type=int, default=None, help="default: the chat id")
    parser.add_argument("--username", default=None)
    parser.add_argument("--message-id", type=int, default=None, help="default: time-based")
    parser.add_argument(
        "--reply-to", type=int, default=None, help="message id replied to (Telegram)"
    )
    parser.add_argument("--secret", default=None, help="default: the channel's, from config")
    parser.add_argument("--lines-file", default=None, help="default: $OPENLINES_LINES_FILE")
    email = parser.add_argument_group("e-mail channels")
    email.add_argument("--from", dest="from_address", default=None, help="the sender's address")
    email.add_argument("--subject", default="Hello", help="the mail's subject")
    email.add_argument("--in-reply-to", default=None, help="Message-ID the mail answers")
    email.add_argument("--smtp", default=None, help="ingest's SMTP endpoint host:port")
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


def whatsapp_notification(
    *,
    phone_number_id: str,
    wa_id: str,
    text: str,
    name: str,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A Cloud API webhook body carrying one text message from `wa_id`."""
    message = {
        "from": wa_id,
        "id": message_id or f"wamid.say.{unique_id()}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": phone_number_id, "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "say", "changes": [{"field": "messages", "value": value}]}],
    }


def hub_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run(args: argparse.Namespace) -> int:
    if args.press is not None:
        if args.chat is None:
            print("--chat is required with --press", file=sys.stderr)
            return 2
        return press(args)
    if args.text is None:
        print("say what? (give the text, or --press BUTTON)", file=sys.stderr)
        return 2
    lines = load_lines_config(args.lines_file, required=args.secret is None)
    found = lines.channel(args.channel) if lines is not None else None
    if found is not None and found[1].type == "email":
        from openlines.cli.mail import send_mail

        return send_mail(args, found[1])
    if args.chat is None:
        print("--chat is required for a telegram, whatsapp or widget channel", file=sys.stderr)
        return 2
    if found is not None and found[1].type == "widget":
        # The signed widget webhook, as a site's server would post it.
        from openlines.cli.say_widget import widget_webhook

        body, headers = widget_webhook(args, found[1].secret)
        return _post(f"{args.url.rstrip('/')}/webhooks/widget/{args.channel}", body, headers)
    channel_type = found[1].type if found is not None else "telegram"
    if args.secret is None and (found is None or channel_type not in ("telegram", "whatsapp")):
        print(
            f"no telegram or whatsapp channel {args.channel!r} in the lines config",
            file=sys.stderr,
        )
        return 2
    secret = args.secret if args.secret is not None else found[1].secret if found else ""
    if channel_type == "whatsapp":
        assert found is not None
        settings = found[1].whatsapp
        body = json.dumps(
            whatsapp_notification(
                phone_number_id=settings.phone_number_id if settings else "",
                wa_id=str(args.chat),
                text=args.text,
                name=args.name,
                message_id=f"wamid.say.{args.message_id}" if args.message_id else None,
            )
        ).encode()
        headers = {SIGNATURE_HEADER: hub_signature(secret, body)}
    else:
        update = telegram_update(
            chat_id=args.chat,
            text=args.text,
            name=args.name,
            user_id=args.user_id,
            username=args.username,
            message_id=args.message_id,
            reply_to=args.reply_to,
        )
        body = json.dumps(update).encode()
        headers = {SECRET_HEADER: secret}
    return _post(f"{args.url.rstrip('/')}/webhooks/{channel_type}/{args.channel}", body, headers)


def press(args: argparse.Namespace) -> int:
    """The sandbox presses the button and delivers the callback query (it knows the secret)."""
    url = f"{args.url.rstrip('/')}/sandbox/{args.channel}/press"
    body: dict[str, Any] = {"chat_id": args.chat, "text": args.press, "name": args.name}
    if args.user_id is not None:
        body["user_id"] = args.user_id
    return _post(url, json.dumps(body).encode(), {})


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    # The body is sent as built: a WhatsApp signature covers these exact bytes.
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {url}: {exc} (is the stack running? `openlines up`)", file=sys.stderr)
        return 1
    print(f"{status} {answer}")
    return 0 if 200 <= status < 300 else 1
