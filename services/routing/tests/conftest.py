"""routing fixtures: a running routing service on the real broker and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .routing_support import Routing, routing_running, routing_settings, write_lines


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path)


@pytest.fixture
async def routing(
    kafka_bootstrap: str, database_url: str, db_schema: str, lines_file: Path
) -> AsyncIterator[Routing]:
    settings = routing_settings(kafka_bootstrap, database_url, db_schema, lines_file)
    async with routing_running(settings) as harness:
        yield harness
