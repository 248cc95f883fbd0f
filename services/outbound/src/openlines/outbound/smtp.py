"""E-mail, the outbound `Provider`: replies go to the channel's SMTP relay (aiosmtplib).

What a failure means depends on how far the SMTP dialogue got, as for Telegram on whether the
request left: until the relay was handed the mail (connect, TLS, login), a network failure is
safe to retry; a relay's reply code is its word (4xx: come back later, 5xx: never); a failure
while the mail was on its way leaves the outcome unknown, because the relay may have queued it.
An e-mail cannot be edited or deleted once sent.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING

import aiosmtplib
from opentelemetry.trace import SpanKind

from openlines.events.catalog import conversation_key
from openlines.events.lines import Channel
from openlines.kit.log import get_logger
from openlines.kit.telemetry import tracer
from openlines.outbound.domain import (
    Accepted,
    CannotChangeSent,
    Outgoing,
    ProviderOutcome,
    Rejected,
    Transient,
    Unknown,
)
from openlines.outbound.mail import classify_smtp, reply_mail
from openlines.outbound.mail_threads import MailThreads

if TYPE_CHECKING:
    import aiohttp

log = get_logger(__name__)


class EmailProvider(CannotChangeSent):
    """Sends replies through the channel's `email.smtp_relay`."""

    cannot_change = "an e-mail cannot be changed once sent"

    def __init__(self, threads: MailThreads) -> None:
        self.threads = threads

    async def send(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        message: Outgoing,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        assert message.message_id is not None, "outbound names each reply"
        relay = channel.email.smtp_relay if channel.email is not None else None
        if relay is None:
            return Rejected("no smtp_relay configured for the channel")
        key = conversation_key(channel.id, message.chat_id)
        try:
            thread = await self.threads.get(key)
        except Exception as exc:
            # Nothing left yet: worth another attempt once the database answers.
            return Transient(f"mail thread not readable: {type(exc).__name__}")
        mail = reply_mail(channel, message, thread, message_id=message.message_id)
        message_id = str(mail["Message-ID"])
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.security == "tls",
            start_tls=relay.security == "starttls",
            timeout=min(connect_timeout, timeout),
        )
        with tracer().start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={"openlines.channel_id": channel.id, "server.address": relay.host},
        ):
            outcome = await _deliver(client, mail, relay.username, relay.password, timeout)
        if isinstance(outcome, Accepted):
            outcome = Accepted(message_id)
            try:
                await self.threads.sent(key, message_id)
            except Exception as exc:
                # The mail is out; only the next reply's References miss it.
                log.warning("could not record a sent mail in its thread", error=repr(exc))
        return outcome


async def _deliver(
    client: aiosmtplib.SMTP, mail: EmailMessage, username: str, password: str, timeout: float
) -> ProviderOutcome:
    """One SMTP transaction, one outcome; never raises for relay or network trouble."""
    try:
        await client.connect()
        if username:
            await client.login(username, password)
    except aiosmtplib.SMTPResponseException as exc:
        # The greeting, EHLO, STARTTLS or AUTH refused (e.g. 535 bad credentials).
        await _close(client)
        return classify_smtp(exc.code, exc.message)
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Nothing of the mail was handed over yet.
        await _close(client)
        return Transient(f"relay not reachable: {type(exc).__name__}")
    try:
        client.timeout = timeout
        refused, _ = await client.send_message(mail)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        await _close(client)
        return classify_smtp(first.code, first.message) if first else Rejected("refused")
    except aiosmtplib.SMTPResponseException as exc:
        # MAIL FROM, RCPT or the end of DATA refused: the relay did not take it.
        await _close(client)
        return classify_smtp(exc.code, exc.message)
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _close(client)
        return Unknown(f"connection lost while sending: {type(exc).__name__}")
    await _close(client)
    if refused:
        code, text = next(iter(refused.values()))
        return classify_smtp(code, text)
    return Accepted("")


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
