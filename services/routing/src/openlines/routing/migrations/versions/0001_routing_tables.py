"""routing tables: operators (presence, capacity), dialog_slots (queue and assignments)

Revision ID: routing0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "routing0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("operator_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False, server_default="offline"),
        sa.Column("status_changed_at", sa.DateTime(timezone=True)),
        sa.Column("max_dialogs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("active", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('online', 'away', 'offline')", name="operators_status"),
        sa.CheckConstraint("active >= 0 AND reserved >= 0", name="operators_load_not_negative"),
        sa.CheckConstraint("max_dialogs >= 0", name="operators_max_dialogs"),
    )
    op.create_table(
        "dialog_slots",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("operator_id", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queued_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'reserved', 'active', 'closed')", name="dialog_slots_status"
        ),
        sa.CheckConstraint(
            "status NOT IN ('reserved', 'active') OR operator_id IS NOT NULL",
            name="dialog_slots_assignee",
        ),
    )
    # The waiting queue: FIFO within priority, per line.
    op.create_index(
        "dialog_slots_queue",
        "dialog_slots",
        ["line_id", sa.text("priority DESC"), "queued_at", "dialog_id"],
        postgresql_where=sa.text("status = 'queued'"),
    )
