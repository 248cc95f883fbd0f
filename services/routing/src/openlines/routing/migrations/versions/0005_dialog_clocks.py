"""routing: dialog_clocks (what the SLA, auto-close and re-route timers count from) and
dialog_slots.passed_over (the operator a re-routed dialog should go past)

Revision ID: routing0005
Revises: routing0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "routing0005"
down_revision = "routing0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dialog_clocks",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("assignee_id", sa.Text),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("waiting_since", sa.DateTime(timezone=True)),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_reached", sa.Text),
        sa.CheckConstraint(
            "sla_reached IS NULL OR sla_reached IN ('warning', 'breach')",
            name="dialog_clocks_sla_reached",
        ),
    )
    op.add_column("dialog_slots", sa.Column("passed_over", sa.Text))


def downgrade() -> None:
    op.drop_column("dialog_slots", "passed_over")
    op.drop_table("dialog_clocks")
