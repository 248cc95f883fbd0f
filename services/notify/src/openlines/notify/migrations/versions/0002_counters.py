"""dialog views carry what the operators' counters need: last message, customer messages,
each operator's read mark (the same facts as dialogs' read model, `openlines.kit.counters`)

Revision ID: notify0002
Revises: notify0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "notify0002"
down_revision = "notify0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dialog_views", sa.Column("last_direction", sa.Text))
    op.add_column(
        "dialog_views",
        sa.Column("inbound_count", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column(
        "dialog_views", sa.Column("read_marks", JSONB, nullable=False, server_default="{}")
    )
    # The counters read open dialogs only: most views are of closed ones.
    op.create_index("dialog_views_status_idx", "dialog_views", ["status"])


def downgrade() -> None:
    op.drop_index("dialog_views_status_idx", table_name="dialog_views")
    for name in ("read_marks", "inbound_count", "last_direction"):
        op.drop_column("dialog_views", name)
