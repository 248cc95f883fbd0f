"""widget transcripts: what each website visitor's socket shows (replies once sent, and the
visitor's own messages), so a visitor who reconnects sees the conversation so far

Revision ID: notify0004
Revises: notify0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "notify0004"
down_revision = "notify0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "widget_messages",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("author_id", sa.Text),
        sa.Column("text", sa.Text),
        # The id the visitor knows it by: the browser's for its own messages, the provider
        # id (what receipts name) for replies, set when outbound dispatched them.
        sa.Column("visible_id", sa.Text),
        sa.Column("visible", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    # In conversation order (when each was written or sent), not in arrival order: a rebuild
    # from the topic yields the very same rows.
    op.create_index(
        "widget_messages_conversation_idx", "widget_messages", ["conversation_key", "sent_at"]
    )
    op.create_index("widget_messages_dialog_idx", "widget_messages", ["dialog_id"])


def downgrade() -> None:
    op.drop_table("widget_messages")
