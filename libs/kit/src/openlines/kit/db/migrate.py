"""Alembic migrations applied at start: the kit's own tables, then the service's.

Both chains live in the service's schema with separate version tables, so the kit can evolve
its tables (events, outbox, inbox, timers) without touching any service's migration history.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from openlines.kit.db.engine import check_schema_name, sqlalchemy_url

KIT_MIGRATIONS = Path(__file__).parent / "kit_migrations"
KIT_VERSION_TABLE = "alembic_version_kit"


def _upgrade(url: str, schema: str, script_location: Path, version_table: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["schema"] = schema
    cfg.attributes["version_table"] = version_table
    engine = create_engine(sqlalchemy_url(url), connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:
            # Two replicas starting together must not run the same migration twice.
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"migrate:{schema}"}
            )
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def migrate(url: str, schema: str, service_migrations: Path | None = None) -> None:
    """Bring `schema` up to date: kit tables first, then the service's own chain."""
    check_schema_name(schema)
    _upgrade(url, schema, KIT_MIGRATIONS, KIT_VERSION_TABLE)
    if service_migrations is not None:
        _upgrade(url, schema, service_migrations, "alembic_version")
