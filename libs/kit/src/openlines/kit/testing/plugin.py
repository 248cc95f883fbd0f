"""pytest plugin: real broker and Postgres fixtures.

Session-scoped servers (per xdist worker), chosen as DESIGN §6 says; see `infra`.
Fixtures: `kafka_bootstrap`, `database_url`, `db_schema`, `module_db_schema`, `topic_factory`,
`unique_topic`.

Every test that uses the broker or the database (directly or through another fixture) is marked
`infra`, so `pytest -m "not infra"` (`make test-fast`) runs the pure tests alone. A test that
starts servers of its own (the stack, the CLI) says so with `pytestmark = pytest.mark.infra`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import FrameType

import pytest
import pytest_asyncio

from openlines.kit.testing import infra

_SOURCES = pytest.StashKey[dict[str, str]]()

# The fixtures that start (or connect to) real servers; whatever depends on them is `infra`.
INFRA_FIXTURES = frozenset({"kafka_bootstrap", "_openlines_pg_server"})


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SOURCES] = {}
    config.addinivalue_line(
        "markers", "infra: needs a Kafka broker, PostgreSQL or a stack of processes (slow)"
    )
    # A CI cancel sends SIGTERM, which would skip fixture teardown and leave servers behind.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INFRA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.infra)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt("SIGTERM")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    sources = config.stash.get(_SOURCES, {})
    if sources:
        terminalreporter.write_sep("-", "openlines test infrastructure")
        for name, source in sources.items():
            terminalreporter.write_line(f"{name}: {source}")


@pytest.fixture(scope="session")
def _openlines_workdir() -> Iterator[Path]:
    path = infra.make_workdir()
    try:
        yield path
    finally:
        infra.remove_workdir(path)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, _openlines_workdir: Path) -> Iterator[str]:
    """`host:port` of a Kafka-compatible broker shared by the whole session."""
    with infra.kafka(_openlines_workdir) as provided:
        request.config.stash[_SOURCES]["kafka"] = provided.source
        yield provided.value


@pytest.fixture(scope="session")
def _openlines_pg_server(request: pytest.FixtureRequest, _openlines_workdir: Path) -> Iterator[str]:
    with infra.postgres(_openlines_workdir) as provided:
        request.config.stash[_SOURCES]["postgres"] = provided.source
        yield provided.value


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, _openlines_pg_server: str) -> Iterator[str]:
    """libpq URI of a database created for this session (and dropped at its end)."""
    from openlines.kit.embedded import create_database, drop_database, with_database

    name = f"openlines_test_{secrets.token_hex(4)}"
    create_database(_openlines_pg_server, name, exist_ok=False)
    sources = request.config.stash[_SOURCES]
    sources["postgres"] = f"{sources['postgres']}, database {name}"
    try:
        yield with_database(_openlines_pg_server, name)
    finally:
        drop_database(_openlines_pg_server, name)


@contextlib.contextmanager
def _fresh_schema(database_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"t_{secrets.token_hex(6)}"
    ident = sql.Identifier(name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    yield name
    # A connection the test leaked would block the drop forever; fail the teardown instead.
    with psycopg.connect(database_url, autocommit=True, options="-c lock_timeout=10s") as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))


@pytest.fixture
def db_schema(database_url: str) -> Iterator[str]:
    """A fresh, empty schema in `database_url`, dropped (CASCADE) after the test."""
    with _fresh_schema(database_url) as name:
        yield name


@pytest.fixture(scope="module")
def module_db_schema(database_url: str) -> Iterator[str]:
    """A fresh schema shared by the tests of one module (for a service runtime started once
    per module; its tests keep apart by unique ids), dropped after the module."""
    with _fresh_schema(database_url) as name:
        yield name


class TopicFactory:
    """`await topic_factory("orders", partitions=3)` creates and returns a unique topic name."""

    def __init__(self, bootstrap: str, label: str) -> None:
        self.bootstrap = bootstrap
        self.label = label
        self.created: list[str] = []

    async def __call__(
        self,
        prefix: str = "test",
        *,
        partitions: int = 3,
        configs: Mapping[str, str] | None = None,
    ) -> str:
        from openlines.kit.kafka.admin import TopicSpec, ensure_topics

        name = f"{prefix}.{self.label}.{secrets.token_hex(4)}"
        await ensure_topics(self.bootstrap, [TopicSpec(name, partitions, dict(configs or {}))])
        self.created.append(name)
        return name


@pytest_asyncio.fixture
async def topic_factory(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> AsyncIterator[TopicFactory]:
    # The test name in the topic name helps when reading a broker log.
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")[:60] or "test"
    factory = TopicFactory(kafka_bootstrap, label)
    yield factory
    from openlines.kit.kafka.admin import delete_topics

    with contextlib.suppress(Exception):
        await delete_topics(kafka_bootstrap, factory.created)


@pytest_asyncio.fixture
async def unique_topic(topic_factory: TopicFactory) -> str:
    """A fresh topic with 3 partitions and unlimited retention."""
    return await topic_factory()
