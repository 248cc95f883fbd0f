"""The SMTP endpoint of ingest: mail for the `email` channels' addresses, as the webhooks are for
the other channel types (MX records, or a forwarding rule, point at it).

As a webhook's 200, the SMTP answer to DATA is 250 only once the broker has acknowledged the
event; otherwise 451 (a temporary failure), so that the sending server tries again later (the
same Message-ID, the same event id: consumers dedupe it). Refusals are permanent 5xx: an unknown
recipient 550, a mail too large for the channel 552, an unreadable one 550.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from openlines.events import INBOUND
from openlines.events import Envelope as EventEnvelope
from openlines.events.catalog import ChannelType
from openlines.events.lines import Channel, Line, LinesConfig
from openlines.ingest.domain import Accepted, InvalidUpdate
from openlines.ingest.mail import parse_mail
from openlines.kit import metrics
from openlines.kit.log import get_logger

log = get_logger(__name__)

MAILS = Counter(
    "openlines_ingest_mails_total", "Mail received over SMTP by outcome", ["channel", "outcome"]
)

Publish = Callable[[str, EventEnvelope], Awaitable[None]]

UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"
TOO_LARGE = "552 5.3.4 Message too big for this mailbox"
TRY_LATER = "451 4.3.0 Not stored yet, please try again later"


def email_channels(lines: LinesConfig) -> dict[str, tuple[Line, Channel]]:
    """The email channels by their address (lower-cased: addresses compare so in practice)."""
    return {
        channel.email.address.lower(): (line, channel)
        for line in lines.lines
        for channel in line.channels
        if channel.type == ChannelType.EMAIL and channel.email is not None
    }


class MailHandler:
    """aiosmtpd's handler: RCPT picks the channels, DATA parses and publishes."""

    def __init__(
        self, lines: LinesConfig, publish: Publish, *, publish_timeout: float, producer_name: str
    ) -> None:
        self.channels = email_channels(lines)
        self.publish = publish
        self.publish_timeout = publish_timeout
        self.producer_name = producer_name

    @property
    def size_limit(self) -> int:
        return max(
            (c.email.max_message_bytes for _, c in self.channels.values() if c.email), default=0
        )

    async def handle_RCPT(  # aiosmtpd calls hooks by these names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() not in self.channels:
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # aiosmtpd calls hooks by these names
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes), "decode_data is off"
        answer = "250 2.0.0 OK"
        # One event per channel addressed (each has its own dialogs); usually just one.
        for address in dict.fromkeys(a.lower() for a in envelope.rcpt_tos):
            answer = await self._deliver(raw, *self.channels[address])
            if not answer.startswith("2"):
                return answer
        return answer

    async def _deliver(self, raw: bytes, line: Line, channel: Channel) -> str:
        assert channel.email is not None
        if len(raw) > channel.email.max_message_bytes:
            metrics.child(MAILS, channel.id, "too_large").inc()
            return TOO_LARGE
        try:
            outcome = parse_mail(raw, line, channel, received_at=datetime.now(UTC))
        except InvalidUpdate as exc:
            metrics.child(MAILS, channel.id, "invalid").inc()
            log.info("mail refused", channel=channel.id, reason=str(exc))
            return f"550 5.6.0 Cannot read this message: {str(exc)[:200]}"
        if not isinstance(outcome, Accepted):
            metrics.child(MAILS, channel.id, "ignored").inc()
            log.info("mail ignored", channel=channel.id, kind=outcome.kind)
            return "250 2.0.0 OK (not a conversation message)"
        envelope = EventEnvelope.new(
            outcome.payload,
            stream_id=outcome.conversation_key,
            stream_version=0,
            producer=self.producer_name,
            event_id=outcome.event_id,
            occurred_at=outcome.occurred_at,
        )
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publish(INBOUND, envelope)
        except MessageSizeTooLargeError:
            metrics.child(MAILS, channel.id, "too_large").inc()
            return TOO_LARGE
        except (KafkaError, TimeoutError) as exc:
            # The send may still complete later: harmless, the retry has the same event id.
            metrics.child(MAILS, channel.id, "broker_unavailable").inc()
            log.warning("broker did not acknowledge a mail", channel=channel.id, error=repr(exc))
            return TRY_LATER
        metrics.child(MAILS, channel.id, "accepted").inc()
        return f"250 2.0.0 OK {envelope.event_id}"


class MailEndpoint:
    """The SMTP server, run in the service's own event loop while the service runs."""

    def __init__(
        self,
        handler: MailHandler,
        *,
        host: str,
        port: int,
        hostname: str = "openlines",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.tls_context = tls_context
        self.bound_port: int | None = None

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self.handler.size_limit,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            ident="openlines ingest",
            tls_context=self.tls_context,
        )

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._protocol, self.host, self.port)
        self.bound_port = server.sockets[0].getsockname()[1]
        log.info("SMTP endpoint", smtp=f"{self.host}:{self.bound_port}")
        try:
            await stop.wait()
        finally:
            server.close()
            await server.wait_closed()
