"""SQLAlchemy 2 async engines on psycopg 3, each service confined to its own schema."""

from __future__ import annotations

import re

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    # The schema lands in DDL and search_path: allow plain identifiers only.
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def sqlalchemy_url(url: str, *, driver: str = "psycopg") -> str:
    """Accept a libpq URI (postgresql://...) and name the psycopg driver for SQLAlchemy."""
    parsed = make_url(url)
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """The plain libpq form (for psycopg connections outside SQLAlchemy)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    check_schema_name(schema)
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per checkout (measured: one in three statements
        # of a small consumer transaction). A connection that died with the server fails its
        # next use instead; SQLAlchemy then invalidates the whole pool, and consumers and
        # HTTP handlers already treat that OperationalError as an infrastructure error.
        pool_pre_ping=False,
        connect_args={"options": f"-csearch_path={schema},public"},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _name_connection(dbapi_conn, _record):
        # Shows up in pg_stat_activity: which service holds which connection.
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET application_name = 'openlines-{schema}'")
            dbapi_conn.commit()

    return engine
