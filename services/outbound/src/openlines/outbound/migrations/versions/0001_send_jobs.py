"""send jobs and provider message references

Revision ID: outbound0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "outbound0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_jobs",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        # Recording order: replies of one conversation go out in this order.
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("chat_id", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("reply_to", UUID(as_uuid=True)),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("claim_id", UUID(as_uuid=True)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("failure_reason", sa.Text),
        sa.Column("source_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("correlation_id", UUID(as_uuid=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed')", name="send_jobs_state_check"
        ),
    )
    op.create_index(
        "send_jobs_due_idx",
        "send_jobs",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "send_jobs_open_by_conversation_idx",
        "send_jobs",
        ["conversation_key", "seq"],
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )
    op.create_index(
        "send_jobs_sending_idx",
        "send_jobs",
        ["claimed_at"],
        postgresql_where=sa.text("state = 'sending'"),
    )
    # Provider ids of known messages (customer messages and our sent replies), so that a
    # reply can quote them with reply_to_message_id.
    op.create_table(
        "message_refs",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("provider_message_id", sa.Text, nullable=False),
    )
