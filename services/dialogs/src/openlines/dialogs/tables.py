"""The read model's tables (created by migrations/versions; this is how the code sees them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

# One row per dialog: what the list and the dialog JSON show.
dialogs = Table(
    "dialogs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("channel_type", Text, nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("customer_name", Text, nullable=False),
    Column("customer_external_id", Text, nullable=False),
    Column("assignee_id", Text),
    Column("participants", ARRAY(Text), nullable=False),
    Column("title", Text, nullable=False),
    Column("last_message_text", Text),
    Column("last_message_direction", Text),
    Column("last_message_at", DateTime(timezone=True)),
    Column("unread_count", Integer, nullable=False),
    Column("waiting_since", DateTime(timezone=True)),
    Column("crm_customer_id", UUID(as_uuid=True)),
    Column("crm_lead_id", UUID(as_uuid=True)),
    Column("crm_contact_id", UUID(as_uuid=True)),
    Column("crm_company_id", UUID(as_uuid=True)),
    Column("crm_deal_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The timeline: customer, operator, note and system messages, with delivery per outbound one.
messages = Table(
    "messages",
    metadata,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    Column("dialog_id", UUID(as_uuid=True), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("direction", Text, nullable=False),
    Column("author_id", Text),
    Column("text", Text),
    Column("attachments", JSONB, nullable=False),
    Column("reply_to", UUID(as_uuid=True)),
    Column("client_message_id", Text),
    Column("external_message_id", Text),
    Column("conversation_key", Text, nullable=False),
    Column("status", Text),
    Column("status_reason", Text),
    Column("provider_message_id", Text),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("edited_at", DateTime(timezone=True)),
    Column("deleted", Boolean, nullable=False),
)

# Conversation key -> its current (latest) dialog. Its row lock serialises inbound handling
# per conversation, so concurrent consumers can never open two dialogs for one conversation.
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_key", Text, primary_key=True),
    Column("dialog_id", UUID(as_uuid=True)),
)

# Delivery receipts that overtook the MessageDispatched telling us the provider message id.
pending_receipts = Table(
    "pending_receipts",
    metadata,
    Column("conversation_key", Text, primary_key=True),
    Column("provider_message_id", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("reason", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
