"""Notify test fixtures: settings on the real broker and Postgres, and a DIALOGS/ROUTING
publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openlines.kit.testing.publish import publisher as publisher_of
from openlines.kit.testing.service import isolated_settings
from openlines.notify.settings import NotifySettings

from .notify_support import Publisher

DEMO_LINES = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"


@pytest.fixture
def make_settings(
    database_url: str, db_schema: str, kafka_bootstrap: str
) -> Callable[..., NotifySettings]:
    def make(**overrides: Any) -> NotifySettings:
        values: dict[str, Any] = {
            **isolated_settings(database_url, db_schema, kafka_bootstrap),
            "lines_file": str(DEMO_LINES),
            **overrides,
        }
        return NotifySettings(**values)

    return make


@pytest.fixture
async def publisher(kafka_bootstrap: str, db_schema: str) -> AsyncIterator[Publisher]:
    async with publisher_of(kafka_bootstrap, f"{db_schema}.", client_id="test-notify-pub") as it:
        yield it


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
