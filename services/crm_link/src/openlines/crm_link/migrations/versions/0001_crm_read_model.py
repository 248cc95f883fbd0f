"""crm-link read model: customers, customer_channels, leads, dialogs

Revision ID: crm0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "crm0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("channel_type", sa.Text, nullable=False),
        sa.Column("external_user_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel_type", "external_user_id", name="customers_identity"),
    )
    op.create_table(
        "customer_channels",
        sa.Column("customer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("channel_id", sa.Text, primary_key=True),
        sa.Column("channel_type", sa.Text, nullable=False),
        sa.Column("external_user_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_table(
        "leads",
        sa.Column("lead_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("auto", sa.Boolean, nullable=False),
        sa.Column("source_dialog_id", UUID(as_uuid=True)),
        sa.Column("actor_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dialogs",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("channel_type", sa.Text, nullable=False),
        sa.Column("external_user_id", sa.Text, nullable=False),
        sa.Column("customer_name", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("lead_id", UUID(as_uuid=True)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True)),
        sa.Column("last_message", JSONB),
    )
    # A lead lists its dialogs newest activity first.
    op.create_index("dialogs_by_lead", "dialogs", ["lead_id", sa.text("last_activity_at DESC")])
