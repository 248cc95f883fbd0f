"""crm-link fixtures: one crm-link per test module on the real broker and Postgres.

Its tests keep apart by their own customers and dialogs (fresh ids); what crm-link emitted for
earlier tests is published, read and set aside before each test, which then sees only its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .crm_support import Crm, crm_running, crm_settings, write_lines


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("crm"))


@pytest.fixture(scope="module")
async def crm_service(
    kafka_bootstrap: str, database_url: str, module_db_schema: str, lines_file: Path
) -> AsyncIterator[Crm]:
    settings = crm_settings(kafka_bootstrap, database_url, module_db_schema, lines_file)
    async with crm_running(settings) as harness:
        yield harness


@pytest.fixture
async def crm(crm_service: Crm) -> Crm:
    await crm_service.published_all()
    crm_service.crm_events.forget()
    return crm_service
