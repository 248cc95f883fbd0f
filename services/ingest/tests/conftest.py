"""ingest test fixtures: a lines file and a running ingest on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from openlines.ingest.app import build_service
from openlines.kit.testing.service import running

from .ingest_helpers import LINES_YAML, Ingest, ingest_settings


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    path = tmp_path / "lines.yaml"
    path.write_text(LINES_YAML)
    return path


@pytest.fixture
async def ingest(kafka_bootstrap: str, lines_file: Path) -> AsyncIterator[Ingest]:
    settings = ingest_settings(kafka_bootstrap, lines_file)
    async with running(build_service(settings)) as url, aiohttp.ClientSession() as http:
        yield Ingest(url, settings, http)
