"""E-mail replies through the real outbound service and the project's sandbox SMTP relay: the
thread comes from the customer's MessageReceived (inbound topic), the reply is threaded, and
the relay's 4xx is retried while its 5xx fails the message."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from openlines.events.catalog import (
    ChannelType,
    Customer,
    MessageDispatched,
    MessageDispatchFailed,
    MessageReceived,
    conversation_key,
)
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import INBOUND
from openlines.kit.embedded import reserve_port
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.publish import Publisher, publisher
from openlines.kit.testing.service import running
from openlines.kit.testing.waiting import wait_handled
from openlines.outbound.app import build_service
from openlines.outbound.settings import OutboundSettings
from openlines.stack.sandbox import ChannelMailbox, Fault, Sandbox
from openlines.stack.sandbox_mail import SandboxRelay

from .outbound_support import Dialogs, OutboundTopic, reply_event

MAIL = "mail-test"
ADDRESS = "help@shop.test"


@dataclass
class Relay:
    sandbox: Sandbox
    port: int

    @property
    def mailbox(self) -> ChannelMailbox:
        return self.sandbox.mailbox(MAIL)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    sandbox = Sandbox()
    handler = SandboxRelay(sandbox, {ADDRESS: MAIL})
    port = reserve_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="sandbox"), "127.0.0.1", port
    )
    try:
        yield Relay(sandbox, port)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def mail_lines(tmp_path: Path, relay: Relay) -> Path:
    return write_lines(
        tmp_path,
        f"""
operators:
  - {{id: ann, role: operator}}
lines:
  - id: test
    channels:
      - id: {MAIL}
        type: email
        secret: thread-secret
        email:
          address: {ADDRESS}
          display_name: Shop help
          smtp_relay: {{host: 127.0.0.1, port: {relay.port}, security: none}}
    operators: [ann]
""",
    )


@pytest.fixture
async def inbound(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[Publisher]:
    async with publisher(kafka_bootstrap, f"{db_schema}.", client_id="test-ingest") as it:
        yield it


def customer_mail(customer: str, message_id: str, subject: str) -> Envelope:
    payload = MessageReceived(
        channel_id=MAIL,
        channel_type=ChannelType.EMAIL,
        conversation_key=conversation_key(MAIL, customer),
        external_chat_id=customer,
        external_user_id=customer,
        external_message_id=message_id,
        customer=Customer(name="Ann", external_id=customer, email=customer),
        text="Where is my order?",
        sent_at=factories.utc_now(),
        line_id="test",
        subject=subject,
    )
    return factories.envelope(payload, producer="ingest")


async def test_a_reply_goes_out_threaded_and_retries_a_temporary_refusal(
    make_settings: Callable[..., OutboundSettings],
    mail_lines: Path,
    relay: Relay,
    inbound: Publisher,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    customer = f"ann.{uuid.uuid4().hex[:8]}@x.test"
    theirs = f"<{uuid.uuid4().hex}@x.test>"
    runtime = build_service(make_settings(lines_file=str(mail_lines)))
    async with running(runtime):
        received = customer_mail(customer, theirs, "Order 42")
        await inbound.publish(INBOUND, received)
        await wait_handled(runtime.engine, received.event_id, consumer="outbound.inbound")

        # The relay answers 451 once (its fault queue), then takes the mail.
        relay.mailbox.faults.append(Fault(503, 1, 0.0))
        reply = reply_event("It ships today.", chat=customer, channel=MAIL)
        await dialogs.publish(reply)
        outcome = await outbound_topic.outcome_of(reply.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatched), outcome.payload
    assert outcome.payload.attempts == 2 and relay.mailbox.rejected == 1
    (mail,) = relay.mailbox.mails
    assert outcome.payload.provider_message_id == mail["message_id"]
    assert mail["rcpt_to"] == [customer]
    assert mail["subject"] == "Re: Order 42"
    assert mail["in_reply_to"] == theirs
    assert mail["references"] == [theirs]
    assert mail["text"].strip() == "It ships today."
    assert "<p>It ships today.</p>" in mail["html"]


async def test_a_permanent_refusal_fails_the_message(
    make_settings: Callable[..., OutboundSettings],
    mail_lines: Path,
    relay: Relay,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    relay.mailbox.faults.append(Fault(400, 1, 0.0))
    reply = reply_event("Hello", chat="gone@x.test", channel=MAIL)
    async with running(build_service(make_settings(lines_file=str(mail_lines)))):
        await dialogs.publish(reply)
        outcome = await outbound_topic.outcome_of(reply.payload.message_id)
    assert isinstance(outcome.payload, MessageDispatchFailed), outcome.payload
    assert outcome.payload.reason.startswith("SMTP 550")
    assert relay.mailbox.mails == []


async def test_an_unreachable_relay_is_retried_then_given_up(
    make_settings: Callable[..., OutboundSettings],
    tmp_path: Path,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    closed = reserve_port()  # nothing listens there
    lines = write_lines(
        tmp_path,
        f"""
lines:
  - id: test
    channels:
      - id: {MAIL}
        type: email
        email:
          address: {ADDRESS}
          smtp_relay: {{host: 127.0.0.1, port: {closed}, security: none}}
""",
    )
    reply = reply_event("Hello", chat="ann@x.test", channel=MAIL)
    settings: dict[str, Any] = {"lines_file": str(lines), "send_max_attempts": 2}
    async with running(build_service(make_settings(**settings))):
        await dialogs.publish(reply)
        outcome = await outbound_topic.outcome_of(reply.payload.message_id)
    assert isinstance(outcome.payload, MessageDispatchFailed), outcome.payload
    assert outcome.payload.attempts == 2
    assert "relay not reachable" in outcome.payload.reason
