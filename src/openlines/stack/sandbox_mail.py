"""The sandbox's SMTP relay: stands in for an organisation's mail relay locally.

An `email` channel's `smtp_relay` points at it; it takes every mail whose envelope sender is a
configured channel address, records it in that channel's mailbox (`GET /sandbox/{channel_id}/sent`
lists it under `sent` and, with its headers and parts, under `mails`) and answers as a relay
does. The channel's fault queue (`POST /sandbox/{channel_id}/faults`) applies: 429 and 5xx
statuses answer 451 (try later), 400 550, 403 554, `smtp_code` exactly that code; `disconnect`
drops the connection (with status 200: after recording the mail, as a relay that took it and
lost the answer); `delay_seconds` waits first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

if TYPE_CHECKING:  # sandbox.py installs the relay: no import back at run time
    from openlines.stack.sandbox import ChannelMailbox, Fault, Sandbox

_FAULT_REPLIES = {
    400: "550 5.1.1 Mailbox unavailable",
    403: "554 5.7.1 Message rejected",
}
_TRY_LATER = "451 4.3.0 Temporary failure, try again later"


def mail_json(raw: bytes, envelope_to: list[str]) -> dict[str, Any]:
    """A recorded mail: the headers that thread it, and its text and HTML parts."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return {
        "message_id": str(message.get("Message-ID", "")),
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "rcpt_to": envelope_to,
        "subject": str(message.get("Subject", "")),
        "in_reply_to": str(message.get("In-Reply-To", "")) or None,
        "references": str(message.get("References", "")).split(),
        "text": _lines(text.get_content()) if text is not None else None,
        "html": _lines(html.get_content()) if html is not None else None,
        "at": time.time(),
    }


def _lines(content: str) -> str:
    """As a mail client shows it: SMTP's CRLF line ends as newlines."""
    return content.replace("\r\n", "\n")


class SandboxRelay:
    """aiosmtpd's handler, recording into the sandbox's mailboxes."""

    def __init__(self, sandbox: Sandbox, channels: Mapping[str, str]) -> None:
        self.sandbox = sandbox
        self.channels = {address.lower(): channel for address, channel in channels.items()}

    async def handle_MAIL(  # aiosmtpd calls hooks by these names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() not in self.channels:
            return "550 5.7.1 Relay access denied: not a channel address"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        channel_id = self.channels[(envelope.mail_from or "").lower()]
        mailbox = self.sandbox.mailbox(channel_id)
        fault = mailbox.next_fault()
        if fault is not None:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status != 200:
                mailbox.rejected += 1
                if fault.disconnect:
                    return _drop(server)
                return _fault_reply(fault)
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        record(mailbox, raw, list(envelope.rcpt_tos))
        if fault is not None and fault.disconnect:
            return _drop(server)
        return "250 2.0.0 OK: queued"


def record(mailbox: ChannelMailbox, raw: bytes, rcpt_to: list[str]) -> None:
    mail = mail_json(raw, rcpt_to)
    mailbox.mails.append(mail)
    mailbox.record(rcpt_to[0] if rcpt_to else mail["to"], mail["text"] or "", None, "email")


def _fault_reply(fault: Fault) -> str:
    if fault.smtp_code is not None:
        return f"{fault.smtp_code} {fault.description or 'Scripted failure'}"
    return _FAULT_REPLIES.get(fault.status, _TRY_LATER)


def _drop(server: SMTP) -> str:
    if isinstance(server.transport, asyncio.Transport):
        server.transport.abort()
    return "421 4.3.0 Connection dropped"  # never read: the connection is gone


def install_relay(
    app: web.Application, sandbox: Sandbox, channels: Mapping[str, str], host: str, port: int
) -> None:
    """Run the relay on `host:port` while the sandbox app runs."""
    relay = SandboxRelay(sandbox, channels)
    servers: list[asyncio.Server] = []

    async def start(_: web.Application) -> None:
        loop = asyncio.get_running_loop()
        servers.append(
            await loop.create_server(
                lambda: SMTP(relay, hostname="sandbox", ident="openlines sandbox relay"),
                host,
                port,
            )
        )

    async def stop(_: web.Application) -> None:
        for server in servers:
            server.close()
            await server.wait_closed()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
