"""ingest's SMTP endpoint on the real broker: a mail is 250 once its event is on the inbound
topic, and 451 (try again later) while the broker does not acknowledge it; refusals are 5xx."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from openlines.events import INBOUND
from openlines.ingest.app import build_service
from openlines.kit.embedded import EmbeddedKafka, reserve_port
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.service import running
from openlines.kit.topics import TopicNames

from .ingest_helpers import has_event, ingest_settings, read_until

ADDRESS = "help@shop.test"
LINES = f"""
lines:
  - id: mail-line
    channels:
      - id: mail-test
        type: email
        secret: s
        email: {{address: {ADDRESS}, max_message_bytes: 4096}}
"""


def mail(text: str = "Where is my order?") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann <ann@x.test>"
    message["To"] = ADDRESS
    message["Subject"] = "Order"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@x.test>"
    message.set_content(text)
    return message


def deliver(port: int, raw: bytes, to: str = ADDRESS) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail("ann@x.test")
        if code == 250:
            code, reply = smtp.rcpt(to)
        if code == 250:
            # On the wire every line ends in CRLF (smtplib leaves bytes as they are).
            code, reply = smtp.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        return code, reply.decode()


async def test_a_mail_is_250_once_its_event_is_on_the_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = reserve_port()
    settings = ingest_settings(
        kafka_bootstrap, write_lines(tmp_path, LINES), smtp_port=port, smtp_hostname="test"
    )
    async with running(build_service(settings)):
        code, reply = await asyncio.to_thread(deliver, port, mail().as_bytes())
        assert code == 250, reply
        event_id = reply.split()[-1]
        topic = f"{settings.topic_namespace}{INBOUND}"
        records = await read_until(kafka_bootstrap, topic, has_event(event_id))
        assert any(r.key == b"mail-test:ann@x.test" for r in records)

        code, _ = await asyncio.to_thread(deliver, port, mail(("y" * 70 + "\n") * 80).as_bytes())
        assert code == 552
        code, _ = await asyncio.to_thread(deliver, port, mail().as_bytes(), "other@shop.test")
        assert code == 550


@pytest.mark.infra  # a broker of its own
async def test_broker_down_gives_451_then_recovers(tmp_path: Path) -> None:
    kafka = EmbeddedKafka(log_path=tmp_path / "tansu.log")
    await asyncio.to_thread(kafka.start)
    try:
        port = reserve_port()
        settings = ingest_settings(
            kafka.bootstrap,
            write_lines(tmp_path, LINES),
            smtp_port=port,
            publish_timeout_seconds=1.0,
        )
        async with running(build_service(settings)):
            code, reply = await asyncio.to_thread(deliver, port, mail().as_bytes())
            assert code == 250, reply

            await asyncio.to_thread(kafka.stop)
            code, reply = await asyncio.to_thread(deliver, port, mail().as_bytes())
            assert code == 451, reply

            # The broker returns (empty: Tansu keeps topics in memory), topics are recreated;
            # the sending server's retries of the same mail are then accepted.
            kafka = EmbeddedKafka(port=kafka.port, log_path=tmp_path / "tansu2.log")
            await asyncio.to_thread(kafka.start)
            await ensure_topics(
                kafka.bootstrap, TopicNames(settings.topic_namespace).all_event_topics()
            )
            again = mail().as_bytes()
            codes: list[int] = []
            async with asyncio.timeout(60):
                while not codes or codes[-1] != 250:
                    codes.append((await asyncio.to_thread(deliver, port, again))[0])
                    await asyncio.sleep(0.2)
            assert set(codes) <= {250, 451}, codes
    finally:
        await asyncio.to_thread(kafka.stop)
