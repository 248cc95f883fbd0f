"""Outbound test fixtures: a fake Telegram Bot API on 127.0.0.1 (it plays the messenger), a
lines file pointing at it, a DIALOGS publisher and an OUTBOUND reader on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from openlines.kit.embedded import reserve_port
from openlines.kit.testing.service import isolated_settings
from openlines.outbound.settings import OutboundSettings

from .outbound_support import CHANNEL, TOKEN, Dialogs, FakeTelegram, OutboundTopic


@pytest.fixture
async def provider() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    app = web.Application()
    app.router.add_post("/{channel}/{bot}/sendMessage", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    port = reserve_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest.fixture
def lines_file(tmp_path: Path, provider: FakeTelegram) -> Path:
    path = tmp_path / "lines.yaml"
    path.write_text(
        f"""
operators:
  - {{id: ann, role: operator}}
lines:
  - id: test
    channels:
      - {{id: {CHANNEL}, type: telegram, secret: s, token: "{TOKEN}",
          api_base: "{provider.url}/{CHANNEL}"}}
      - {{id: wa-test, type: whatsapp, secret: s, token: t, api_base: "{provider.url}/wa"}}
    operators: [ann]
"""
    )
    return path


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
    publisher = Dialogs(kafka_bootstrap, f"{db_schema}.")
    await publisher.producer.start()
    try:
        yield publisher
    finally:
        await publisher.producer.stop()


@pytest.fixture
async def outbound_topic(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[OutboundTopic]:
    reader = OutboundTopic(kafka_bootstrap, f"{db_schema}.")
    try:
        yield reader
    finally:
        await reader.close()
