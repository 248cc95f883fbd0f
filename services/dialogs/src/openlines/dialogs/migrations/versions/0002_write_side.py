"""dialogs write side apart from the read model: inbound_messages, outbound_messages

The write side's lookups of messages (a customer's message by its provider id, our message by
the id the provider gave it) move out of the read model's `messages` table into tables of
their own, filled here from `messages` so that nothing already recorded is forgotten:
afterwards the read model (dialogs, messages) may be rebuilt, elsewhere too, without the write
side noticing. conversations and pending_receipts stay as they are; they were write side all
along. Table comments say which side each table is on.

Revision ID: dialogs0002
Revises: dialogs0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "dialogs0002"
down_revision = "dialogs0001"
branch_labels = None
depends_on = None

READ_MODEL = "read model: derived from the events alone; may be rebuilt (projection.rebuild)"
WRITE_SIDE = "write side: decides where writes go and deduplicates them; never rebuilt"


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("conversation_key", sa.Text, primary_key=True),
        sa.Column("external_message_id", sa.Text, primary_key=True),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", UUID(as_uuid=True), nullable=False),
    )
    op.execute(
        "INSERT INTO inbound_messages (conversation_key, external_message_id, dialog_id,"
        " message_id)"
        " SELECT conversation_key, external_message_id, dialog_id, message_id FROM messages"
        " WHERE direction = 'in' AND external_message_id IS NOT NULL"
    )
    op.create_table(
        "outbound_messages",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("provider_message_id", sa.Text),
    )
    op.execute(
        "INSERT INTO outbound_messages (message_id, dialog_id, conversation_key,"
        " provider_message_id)"
        " SELECT message_id, dialog_id, conversation_key, provider_message_id FROM messages"
        " WHERE direction = 'out'"
    )
    # Provider ids are unique per chat (Telegram numbers messages per chat), not per channel.
    op.create_index(
        "outbound_messages_provider_idx",
        "outbound_messages",
        ["conversation_key", "provider_message_id"],
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    for table in ("dialogs", "messages"):
        op.create_table_comment(table, READ_MODEL)
    for table in ("conversations", "pending_receipts", "inbound_messages", "outbound_messages"):
        op.create_table_comment(table, WRITE_SIDE)


def downgrade() -> None:
    op.drop_table("outbound_messages")
    op.drop_table("inbound_messages")
