"""signed outgoing webhooks: subscriptions, their deliveries (a durable queue per
subscription) and the line of each dialog (for subscriptions of some lines)

Revision ID: notify0003
Revises: notify0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "notify0003"
down_revision = "notify0002"
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("lines", ARRAY(sa.Text), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        # Recording order: the deliveries of one dialog leave in this order.
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column(
            "subscription_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("order_key", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _timestamp("next_attempt_at"),
        # Retries stop here (the first recording, or a redelivery, plus the retry window).
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_id", UUID(as_uuid=True)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        _timestamp("delivered_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("subscription_id", "event_id", name="webhook_deliveries_event_key"),
        sa.CheckConstraint(
            "state IN ('pending', 'delivering', 'delivered', 'failed')",
            name="webhook_deliveries_state_check",
        ),
    )
    op.create_index(
        "webhook_deliveries_due_idx",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "webhook_deliveries_open_by_key_idx",
        "webhook_deliveries",
        ["subscription_id", "order_key", "seq"],
        postgresql_where=sa.text("state IN ('pending', 'delivering')"),
    )
    op.create_index(
        "webhook_deliveries_delivered_idx",
        "webhook_deliveries",
        ["delivered_at"],
        postgresql_where=sa.text("state = 'delivered'"),
    )
    op.create_index(
        "webhook_deliveries_by_state_idx", "webhook_deliveries", ["subscription_id", "state", "seq"]
    )
    op.create_table(
        "webhook_dialog_lines",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("line_id", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_dialog_lines")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
