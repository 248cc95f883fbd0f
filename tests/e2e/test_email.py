"""E-mail across the real processes: a customer e-mails ingest's SMTP endpoint, routing assigns
the dialog, the operator answers through the gateway, the sandbox relay gets a correctly
threaded reply, and the customer's answer to it (from another address) continues the dialog."""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
import sys
import uuid
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

import aiohttp
import pytest

from .conftest import MAIL_ADDRESS, MAIL_CHANNEL, MAIL_MAX_BYTES, REPO, Stack
from .steps import eventually, get_json, json_if_ok, post_json, set_presence

pytestmark = pytest.mark.infra  # runs servers or processes of its own


def smtp_of(stack: Stack, service: str) -> tuple[str, int]:
    """The SMTP endpoint stack.json reports for `service`."""
    services: Any = stack.state["services"]
    record = next(s for s in services if s["name"] == service)
    host, _, port = record["smtp"].rpartition(":")
    return host, int(port)


def customer_mail(
    sender: str, text: str, subject: str = "Order 42", in_reply_to: str | None = None
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr(("Carla Mailer", sender))
    mail["To"] = MAIL_ADDRESS
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@customer.test>"
    if in_reply_to is not None:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    return mail


def deliver(endpoint: tuple[str, int], sender: str, to: str, raw: bytes) -> tuple[int, str]:
    """One SMTP transaction, as the customer's mail server would make it: the last reply."""
    with smtplib.SMTP(*endpoint, timeout=30) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail(sender)
        if code == 250:
            code, reply = smtp.rcpt(to)
        if code == 250:
            # On the wire every line ends in CRLF (smtplib leaves bytes as they are).
            code, reply = smtp.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        return code, reply.decode()


async def test_email_dialog_end_to_end(stack: Stack, http: aiohttp.ClientSession) -> None:
    base, ml1 = stack.url, stack.auth("ml1")
    ingest = smtp_of(stack, "ingest")
    customer = f"carla.{uuid.uuid4().hex[:8]}@customer.test"
    await set_presence(http, base, ml1, "ml1", "online")

    # The customer writes; 250 only once the broker has the event.
    first = customer_mail(customer, "Where is my order?\n\n-- \nCarla")
    code, reply = await asyncio.to_thread(deliver, ingest, customer, MAIL_ADDRESS, first.as_bytes())
    assert code == 250, reply
    # The same mail delivered again (a sending server's retry) is one message.
    code, _ = await asyncio.to_thread(deliver, ingest, customer, MAIL_ADDRESS, first.as_bytes())
    assert code == 250

    async def assigned() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all", ml1)
        for dialog in (body or {}).get("items", []):
            if dialog["customer"]["external_id"] == customer and dialog["status"] == "active":
                return dict(dialog)
        return None

    dialog = await eventually(assigned, "the mail's dialog, assigned to ml1")
    dialog_id = dialog["id"]
    assert dialog["assignee_id"] == "ml1"
    assert dialog["channel_id"] == MAIL_CHANNEL
    assert dialog["customer"]["name"] == "Carla Mailer"
    assert dialog["last_message"]["text"] == "Where is my order?"  # the signature cut

    # The operator answers; the sandbox relay gets a threaded mail.
    status, body = await post_json(
        http,
        f"{base}/api/v1/dialogs/{dialog_id}/messages",
        ml1,
        {"text": "It ships today.\n\nKind regards, <Mail One>", "client_message_id": customer},
    )
    assert status == 202, body

    async def relayed() -> list[dict[str, Any]] | None:
        got = await json_if_ok(http, f"{base}/sandbox/{MAIL_CHANNEL}/sent", {})
        mails = [m for m in (got or {}).get("mails", []) if customer in m["rcpt_to"]]
        return mails or None

    (mail,) = await eventually(relayed, "the reply at the sandbox relay")
    assert mail["to"] == customer
    assert mail["from"] == f"E2E support <{MAIL_ADDRESS}>"
    assert mail["subject"] == "Re: Order 42"
    assert mail["in_reply_to"] == first["Message-ID"]
    assert mail["references"] == [first["Message-ID"]]
    assert mail["message_id"].endswith("@e2e.openlines.test>")
    assert mail["text"].strip() == "It ships today.\n\nKind regards, <Mail One>"
    assert "Kind regards, &lt;Mail One&gt;" in mail["html"]

    async def sent_in_timeline() -> list[dict[str, Any]] | None:
        got = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", ml1)
        outs = [m for m in (got or {}).get("items", []) if m["direction"] == "out"]
        return outs if outs and outs[0]["delivery"]["status"] == "sent" else None

    await eventually(sent_in_timeline, "delivery status sent in the timeline")

    # The customer answers from another address of hers: the reply's Message-ID threads it.
    other = f"carla.work.{uuid.uuid4().hex[:8]}@corp.test"
    answer = customer_mail(
        other,
        "Thanks!\n\nOn Mon, Support wrote:\n> It ships today.",
        subject="Re: Order 42",
        in_reply_to=mail["message_id"],
    )
    code, reply = await asyncio.to_thread(deliver, ingest, other, MAIL_ADDRESS, answer.as_bytes())
    assert code == 250, reply

    async def continued() -> list[dict[str, Any]] | None:
        got = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", ml1)
        ins = [m for m in (got or {}).get("items", []) if m["direction"] == "in"]
        return ins if len(ins) == 2 else None

    ins = await eventually(continued, "the answer in the same dialog")
    assert sorted(m["text"] for m in ins) == ["Thanks!", "Where is my order?"]
    status, listing = await get_json(http, f"{base}/api/v1/dialogs?tab=all", ml1)
    assert status == 200
    assert not [d for d in listing["items"] if d["customer"]["external_id"] == other]


async def test_email_refusals(stack: Stack) -> None:
    ingest = smtp_of(stack, "ingest")
    sender = "big@customer.test"
    # Lines within SMTP's 1000 characters: the size is refused, not the line length.
    oversize = customer_mail(sender, ("x" * 70 + "\n") * (MAIL_MAX_BYTES // 70 + 100)).as_bytes()
    code, reply = await asyncio.to_thread(deliver, ingest, sender, MAIL_ADDRESS, oversize)
    assert code == 552, reply
    code, reply = await asyncio.to_thread(
        deliver, ingest, sender, "nobody@e2e.openlines.test", b"Subject: x\r\n\r\nx"
    )
    assert code == 550, reply
    code, reply = await asyncio.to_thread(
        deliver, ingest, sender, MAIL_ADDRESS, b"no headers, no sender"
    )
    assert code == 550, reply


async def test_say_mails_the_demo_channel(stack: Stack, http: aiohttp.ClientSession) -> None:
    """`openlines say --channel mail-demo` sends a real mail to support@demo.openlines.test."""
    sender = f"say.{uuid.uuid4().hex[:8]}@customer.test"
    said = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "openlines.cli.main",
            "say",
            "--url",
            stack.url,
            "--channel",
            "mail-demo",
            "--from",
            sender,
            "--name",
            "Sam Sayer",
            "--subject",
            "Demo",
            "Hello by mail",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert said.returncode == 0, said.stdout + said.stderr
    assert said.stdout.startswith("250 "), said.stdout
    sue = stack.auth("sue", "supervisor")

    async def opened() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{stack.url}/api/v1/dialogs?tab=all", sue)
        found = [d for d in (body or {}).get("items", []) if d["customer"]["external_id"] == sender]
        return found[0] if found else None

    dialog = await eventually(opened, "the demo mail's dialog")
    assert dialog["channel_id"] == "mail-demo"
    assert dialog["last_message"]["text"] == "Hello by mail"
