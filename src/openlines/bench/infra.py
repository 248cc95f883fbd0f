"""Broker and Postgres for benchmarks: explicit env URLs, else embedded ones started here."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openlines.kit.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    create_database,
    drop_database,
    with_database,
)


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    database_url: str


@contextmanager
def bench_infra() -> Iterator[Infra]:
    bootstrap = os.environ.get("OPENLINES_KAFKA_BOOTSTRAP")
    server_url = os.environ.get("OPENLINES_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="openlines-bench-") as tmp:
        kafka = None if bootstrap else EmbeddedKafka(log_path=Path(tmp) / "tansu.log").start()
        pg = None if server_url else EmbeddedPostgres(Path(tmp) / "pg", fast=True).start()
        try:
            server = server_url or (pg.url if pg else "")
            name = f"openlines_bench_{uuid.uuid4().hex[:8]}"
            create_database(server, name)
            try:
                yield Infra(
                    bootstrap or (kafka.bootstrap if kafka else ""), with_database(server, name)
                )
            finally:
                drop_database(server, name)
        finally:
            if kafka is not None:
                kafka.stop()
            if pg is not None:
                pg.stop()
