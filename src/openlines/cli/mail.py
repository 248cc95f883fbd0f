"""`openlines say --channel mail-demo --from ann@example.com "text"`: a customer e-mails.

A real mail over SMTP to ingest's endpoint, as the customer's mail server would deliver it.
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from openlines.events.lines import Channel


def smtp_endpoint(args: argparse.Namespace) -> tuple[str, int]:
    """`--smtp host:port`, else the stack's: the gateway's port (its base) + ingest's offset."""
    from openlines.stack.services import SMTP_PORT_OFFSETS

    if args.smtp:
        host, _, port = args.smtp.rpartition(":")
        return host or "127.0.0.1", int(port)
    url = urlsplit(args.url)
    return url.hostname or "127.0.0.1", (url.port or 80) + SMTP_PORT_OFFSETS["ingest"]


def customer_mail(
    *, to: str, sender: str, name: str, subject: str, text: str, in_reply_to: str | None
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((name, sender))
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2] or 'customer.test'}>"
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    return mail


def send_mail(args: argparse.Namespace, channel: Channel) -> int:
    assert channel.email is not None
    sender = args.from_address or "customer@example.com"
    mail = customer_mail(
        to=channel.email.address,
        sender=sender,
        name=args.name,
        subject=args.subject,
        text=args.text,
        in_reply_to=args.in_reply_to,
    )
    host, port = smtp_endpoint(args)
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.ehlo()
            code, reply = smtp.mail(sender)
            if code == 250:
                code, reply = smtp.rcpt(channel.email.address)
            if code in (250, 251):
                code, reply = smtp.data(mail.as_bytes(policy=policy.SMTP))
    except (OSError, smtplib.SMTPException) as exc:
        print(f"cannot reach smtp://{host}:{port}: {exc} (is the stack running?)", file=sys.stderr)
        return 1
    print(f"{code} {reply.decode(errors='replace')}  Message-ID: {mail['Message-ID']}")
    return 0 if code == 250 else 1
