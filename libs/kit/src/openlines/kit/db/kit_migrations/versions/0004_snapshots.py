"""snapshots: the latest state of long streams, so a load replays only the events after it

Revision ID: kit0004
Revises: kit0003
"""

from alembic import op

from openlines.kit.db.tables import snapshots

revision = "kit0004"
down_revision = "kit0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    snapshots.create(op.get_bind())
