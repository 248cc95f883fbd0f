"""ingest test fixtures: a lines file and a running ingest on the real broker.

One ingest per test module: it keeps no state between requests, and each test reads back
only its own records (by event id, of a chat id no other test uses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from openlines.ingest.app import build_service
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.service import running

from .ingest_helpers import LINES_YAML, Ingest, ingest_settings


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("ingest"), LINES_YAML)


@pytest.fixture(scope="module")
async def ingest(kafka_bootstrap: str, lines_file: Path) -> AsyncIterator[Ingest]:
    settings = ingest_settings(kafka_bootstrap, lines_file)
    async with running(build_service(settings)) as url, aiohttp.ClientSession() as http:
        yield Ingest(url, settings, http)
