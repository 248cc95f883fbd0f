"""Notify test fixtures: one notify per test module on the real broker and Postgres (its tests
keep apart by fresh dialogs, and each takes what it published before it ends), and settings
for a test that needs a notify of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openlines.kit.testing.publish import publisher as publisher_of
from openlines.kit.testing.service import isolated_settings, running
from openlines.notify.app import build_service
from openlines.notify.settings import NotifySettings

from .notify_support import Publisher, Running

DEMO_LINES = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"


def _settings(
    database_url: str, schema: str, kafka_bootstrap: str, **overrides: Any
) -> NotifySettings:
    return NotifySettings(
        **{
            **isolated_settings(database_url, schema, kafka_bootstrap),
            "lines_file": str(DEMO_LINES),
            **overrides,
        }
    )


@pytest.fixture(scope="module")
async def notify(
    database_url: str, module_db_schema: str, kafka_bootstrap: str
) -> AsyncIterator[Running]:
    settings = _settings(database_url, module_db_schema, kafka_bootstrap)
    async with (
        running(build_service(settings)) as url,
        publisher_of(kafka_bootstrap, settings.topic_namespace, client_id="test-notify") as pub,
    ):
        yield Running(url, pub)


@pytest.fixture
def make_settings(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> Callable[..., NotifySettings]:
    """Settings of a notify of the test's own (in its own schema and topic namespace)."""

    def make(**overrides: Any) -> NotifySettings:
        return _settings(database_url, db_schema, kafka_bootstrap, **overrides)

    return make


@pytest.fixture
async def publisher(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[Publisher]:
    """A publisher into the namespace of `make_settings`' notify."""
    async with publisher_of(kafka_bootstrap, f"{db_schema}.", client_id="test-notify-pub") as it:
        yield it


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
