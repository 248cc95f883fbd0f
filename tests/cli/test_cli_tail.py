"""`openlines tail`: events of every topic, one readable line each."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from datetime import UTC, datetime

import pytest

from openlines.events import DIALOGS, INBOUND, Envelope
from openlines.events.catalog import (
    ChannelType,
    Customer,
    DialogRenamed,
    MessageReceived,
    conversation_key,
)
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.testing.publish import publisher
from openlines.kit.topics import TopicNames

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def _tail(*argv: str) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "250"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "tail",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _received(text: str) -> Envelope[MessageReceived]:
    key = conversation_key("tg-demo", "42")
    payload = MessageReceived(
        channel_id="tg-demo",
        channel_type=ChannelType.TELEGRAM,
        conversation_key=key,
        external_chat_id="42",
        external_user_id="42",
        external_message_id="1",
        customer=Customer(name="Ann Lee", external_id="42"),
        text=text,
        sent_at=datetime.now(UTC),
    )
    return Envelope.new(payload, stream_id=key, stream_version=0, producer="test")


@pytest.fixture
async def namespace(kafka_bootstrap: str) -> str:
    ns = f"tail{secrets.token_hex(4)}."
    await ensure_topics(kafka_bootstrap, TopicNames(ns).all_event_topics())
    return ns


async def test_tail_prints_events_of_every_topic(kafka_bootstrap: str, namespace: str) -> None:
    dialog_id = uuid.uuid4()
    renamed = Envelope.new(
        DialogRenamed(dialog_id=dialog_id, title="VIP", actor_id="sue"),
        stream_id=str(dialog_id),
        stream_version=3,
        producer="test",
    )
    async with publisher(kafka_bootstrap, namespace, client_id="tail-test") as inputs:
        await inputs.publish(INBOUND, _received("where is my order?"))
        await inputs.publish(DIALOGS, renamed)
        await inputs.producer.send_and_wait(namespace + DIALOGS, b"not json", key=b"x")

    code, out = await _tail(
        "--bootstrap", kafka_bootstrap, "--namespace", namespace, "--from-beginning", "--max", "3"
    )
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert "tailing 12 topics" in lines[0]
    events = lines[1:]
    assert len(events) == 3, out
    received = next(line for line in events if "MessageReceived" in line)
    assert "inbound" in received and "tg-demo:42" in received
    assert "text='where is my order?'" in received and "customer.name='Ann Lee'" in received
    renamed_line = next(line for line in events if "DialogRenamed" in line)
    assert "dialogs" in renamed_line and str(dialog_id)[:8] in renamed_line
    assert "title='VIP'" in renamed_line
    assert any("undecodable" in line for line in events)


async def test_tail_topic_filter_and_unknown_topic(kafka_bootstrap: str, namespace: str) -> None:
    async with publisher(kafka_bootstrap, namespace, client_id="tail-test") as inputs:
        await inputs.publish(INBOUND, _received("one"), _received("two"))
    common = ("--bootstrap", kafka_bootstrap, "--namespace", namespace, "--from-beginning")
    code, out = await _tail(*common, "--topic", "inbound", "--max", "2")
    assert code == 0, out
    assert "tailing 1 topics" in out
    assert "text='one'" in out and "text='two'" in out

    code, out = await _tail(*common, "--topic", "nonsense")
    assert code != 0
    assert "unknown topic 'nonsense'" in out
