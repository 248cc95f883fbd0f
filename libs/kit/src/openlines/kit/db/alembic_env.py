"""Shared Alembic env: every migration directory's env.py calls `run()`.

Migrations run online only, on the connection that `migrate()` hands over (inside its lock).
"""

from __future__ import annotations

from alembic import context


def run() -> None:
    cfg = context.config
    connection = cfg.attributes["connection"]
    context.configure(
        connection=connection,
        version_table=cfg.attributes["version_table"],
        version_table_schema=cfg.attributes["schema"],
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
