"""crm-link fixtures: a running crm-link on the real broker and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .crm_support import Crm, crm_running, crm_settings, write_lines


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path)


@pytest.fixture
async def crm(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> AsyncIterator[Crm]:
    async with crm_running(
        crm_settings(kafka_bootstrap, database_url, db_schema, lines_file)
    ) as harness:
        yield harness
