"""Each test gets the dialogs service in-process, with its own schema and topic namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openlines.dialogs.app import build_service
from openlines.dialogs.settings import DialogsSettings
from openlines.kit.testing.service import isolated_settings, serving

from .dialogs_stack import REPO, DialogsStack


@pytest.fixture
def lines_file() -> Path:
    """The demo lines (ann and bob: max_dialogs 2); a test may parametrize its own file."""
    return REPO / "config" / "demo.yaml"


@pytest.fixture
async def stack(
    database_url: str, db_schema: str, kafka_bootstrap: str, lines_file: Path
) -> AsyncIterator[DialogsStack]:
    settings = DialogsSettings(
        **isolated_settings(database_url, db_schema, kafka_bootstrap),
        lines_file=str(lines_file),
        jwt_secret="dialogs-test-secret-of-at-least-32-bytes",
        log_level="WARNING",
    )
    runtime = build_service(settings)
    ns = settings.topic_namespace
    async with serving(runtime, "dialogs-test") as served:
        yield DialogsStack(served.url, ns, kafka_bootstrap, runtime, served.http, served.publisher)
