"""Outbound test fixtures: the sandbox provider on 127.0.0.1 (it plays the messenger), a lines
file pointing at it, a DIALOGS publisher and an OUTBOUND reader on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from openlines.events.envelope import Envelope
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.publish import publisher
from openlines.kit.testing.service import isolated_settings, running
from openlines.outbound.app import build_service
from openlines.outbound.settings import OutboundSettings

from .outbound_support import (
    CHANNEL,
    TOKEN,
    Dialogs,
    OutboundTopic,
    Provider,
    SandboxServer,
    SendOne,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def provider(sandbox: SandboxServer) -> Provider:
    return Provider(sandbox)


@pytest.fixture
def lines_file(tmp_path: Path, provider: Provider) -> Path:
    return write_lines(
        tmp_path,
        f"""
operators:
  - {{id: ann, role: operator}}
lines:
  - id: test
    channels:
      - {{id: {CHANNEL}, type: telegram, secret: s, token: "{TOKEN}",
          api_base: "{provider.url}/{CHANNEL}"}}
      - {{id: wa-test, type: whatsapp, secret: s, token: wa-token,
          api_base: "{provider.url}/wa-test",
          whatsapp: {{phone_number_id: "100200", api_version: v21.0}}}}
      - {{id: vb-test, type: viber, secret: s, token: t, api_base: "{provider.url}/vb"}}
    operators: [ann]
""",
    )


@pytest.fixture
def make_settings(
    database_url: str, db_schema: str, kafka_bootstrap: str, lines_file: Path
) -> Callable[..., OutboundSettings]:
    def make(**overrides: Any) -> OutboundSettings:
        values: dict[str, Any] = {
            **isolated_settings(database_url, db_schema, kafka_bootstrap),
            "lines_file": str(lines_file),
            "send_backoff_base_seconds": 0.05,
            "send_backoff_max_seconds": 0.2,
            "sender_poll_seconds": 0.1,
            **overrides,
        }
        return OutboundSettings(**values)

    return make


@pytest.fixture
async def dialogs(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[Dialogs]:
    async with publisher(kafka_bootstrap, f"{db_schema}.", client_id="test-dialogs") as it:
        yield Dialogs(it)


@pytest.fixture
async def outbound_topic(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[OutboundTopic]:
    reader = OutboundTopic(kafka_bootstrap, f"{db_schema}.")
    try:
        yield reader
    finally:
        await reader.close()


@pytest.fixture
def send_one(
    make_settings: Callable[..., OutboundSettings], dialogs: Dialogs, outbound_topic: OutboundTopic
) -> SendOne:
    async def send(appended: Envelope, **settings: Any) -> Envelope:
        async with running(build_service(make_settings(**settings))):
            await dialogs.publish(appended)
            return await outbound_topic.outcome_of(appended.payload.message_id)

    return send
