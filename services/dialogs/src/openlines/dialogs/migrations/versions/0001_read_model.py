"""dialogs read model: dialogs, messages (timeline), conversations, pending receipts

Revision ID: dialogs0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "dialogs0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dialogs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("channel_type", sa.Text, nullable=False),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("customer_name", sa.Text, nullable=False),
        sa.Column("customer_external_id", sa.Text, nullable=False),
        sa.Column("assignee_id", sa.Text),
        sa.Column("participants", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("last_message_text", sa.Text),
        sa.Column("last_message_direction", sa.Text),
        sa.Column("last_message_at", sa.DateTime(timezone=True)),
        sa.Column("unread_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("waiting_since", sa.DateTime(timezone=True)),
        sa.Column("crm_customer_id", UUID(as_uuid=True)),
        sa.Column("crm_lead_id", UUID(as_uuid=True)),
        sa.Column("crm_contact_id", UUID(as_uuid=True)),
        sa.Column("crm_company_id", UUID(as_uuid=True)),
        sa.Column("crm_deal_id", UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The list: newest update first, keyset-paginated on (updated_at, id).
    op.create_index("dialogs_status_updated_idx", "dialogs", ["status", "updated_at", "id"])
    op.create_index("dialogs_assignee_updated_idx", "dialogs", ["assignee_id", "updated_at"])
    op.create_index("dialogs_updated_idx", "dialogs", ["updated_at", "id"])

    op.create_table(
        "messages",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("author_id", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("attachments", JSONB, nullable=False, server_default="[]"),
        sa.Column("reply_to", UUID(as_uuid=True)),
        sa.Column("client_message_id", sa.Text),
        sa.Column("external_message_id", sa.Text),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("status_reason", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True)),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="false"),
    )
    op.create_index("messages_dialog_seq_idx", "messages", ["dialog_id", "seq"])
    # Provider ids are unique per chat (Telegram numbers messages per chat), not per channel.
    op.create_index(
        "messages_inbound_external_idx",
        "messages",
        ["conversation_key", "external_message_id"],
        unique=True,
        postgresql_where=sa.text("direction = 'in'"),
    )
    op.create_index(
        "messages_provider_idx",
        "messages",
        ["conversation_key", "provider_message_id"],
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )

    op.create_table(
        "conversations",
        sa.Column("conversation_key", sa.Text, primary_key=True),
        sa.Column("dialog_id", UUID(as_uuid=True)),
    )

    op.create_table(
        "pending_receipts",
        sa.Column("conversation_key", sa.Text, primary_key=True),
        sa.Column("provider_message_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
