"""dead_letters: outbox records the relay can never publish, kept for `openlines deadletters`

Revision ID: kit0003
Revises: kit0002
"""

from alembic import op

from openlines.kit.db.tables import dead_letters

revision = "kit0003"
down_revision = "kit0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dead_letters.create(op.get_bind())
