"""dialogs.ratings and dialogs.classification: CSAT, the operator's rating, the classification

Nothing recorded DialogRated or DialogClassified before this revision, so the columns start
empty; a rebuild fills them from the events like every read-model column.

Revision ID: dialogs0007
Revises: dialogs0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "dialogs0007"
down_revision = "dialogs0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dialogs", sa.Column("ratings", JSONB, nullable=False, server_default="{}"))
    op.add_column("dialogs", sa.Column("classification", JSONB))


def downgrade() -> None:
    op.drop_column("dialogs", "classification")
    op.drop_column("dialogs", "ratings")
