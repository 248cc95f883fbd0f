"""routing: stale_offers, capacity still held by reservations that expired unanswered

Revision ID: routing0002
Revises: routing0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "routing0002"
down_revision = "routing0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stale_offers",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("operator_id", sa.Text, primary_key=True),
        sa.Column(
            "expired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("stale_offers")
