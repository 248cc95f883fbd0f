"""kit tables: events, outbox, inbox, timers

Revision ID: kit0001
Revises:
"""

from alembic import op

from openlines.kit.db.tables import events, inbox, metadata, outbox, timers

revision = "kit0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The initial revision creates the v1 tables as declared; later changes are explicit ops.
    metadata.create_all(op.get_bind(), tables=[events, outbox, inbox, timers])
