"""dialogs' tables (created by migrations/versions; this is how the code sees them), in two
groups that must not be confused:

- the read model (`read_model`: dialogs, messages) is what the API reads. It is derived from
  the events alone, so it can be dropped and rebuilt, also into another schema beside the live
  one (`projection.rebuild`);
- the write side's own tables (`write_side`: conversations, pending_receipts,
  inbound_messages, outbound_messages) decide where a write goes and deduplicate inputs. They
  hold facts that are not in the events (which dialog a conversation's next message goes to,
  receipts waiting for their dispatch), so a rebuild never touches them (`store` writes them).

A third group, `workspace` (quick_replies, drafts), is the operators' own data: it is not
about a dialog's history and is not in any event, so it is never rebuilt either (`workspace`,
the module, reads and writes it).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

read_model = MetaData()
write_side = MetaData()
workspace = MetaData()

# 'simple': no stemming and no stop words, so any language (and names, ids, e-mails) match
# as typed. The phone also as digits only, so "38050" finds "+380 50 123...".
PROFILE_SEARCH_SQL = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || customer_name || ' '"
    " || customer_external_id || ' ' || coalesce(customer_username, '') || ' '"
    " || coalesce(customer_phone, '') || ' '"
    " || regexp_replace(coalesce(customer_phone, ''), '[^0-9]', '', 'g') || ' '"
    " || coalesce(customer_email, ''))"
)

# -- the read model -------------------------------------------------------------------------

# One row per dialog: what the list and the dialog JSON show.
dialogs = Table(
    "dialogs",
    read_model,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("channel_type", Text, nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("customer_name", Text, nullable=False),
    Column("customer_external_id", Text, nullable=False),
    Column("customer_username", Text),
    Column("customer_phone", Text),
    Column("customer_email", Text),
    Column("assignee_id", Text),
    Column("participants", ARRAY(Text), nullable=False),
    Column("pinned_to", Text),
    # Operators @mentioned in its notes: they may read it (the access policy's `mentioned`).
    Column("mentioned", ARRAY(Text), nullable=False, server_default="{}"),
    Column("title", Text, nullable=False),
    Column("last_message_text", Text),
    Column("last_message_direction", Text),
    Column("last_message_at", DateTime(timezone=True)),
    # Unread is per operator: customer messages so far minus the caller's read mark
    # (`openlines.kit.counters`).
    Column("inbound_count", Integer, nullable=False),
    Column("read_marks", JSONB, nullable=False),
    Column("waiting_since", DateTime(timezone=True)),
    Column("crm_customer_id", UUID(as_uuid=True)),
    Column("crm_lead_id", UUID(as_uuid=True)),
    Column("crm_contact_id", UUID(as_uuid=True)),
    Column("crm_company_id", UUID(as_uuid=True)),
    Column("crm_deal_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    # {"customer": {score, scale}, "operator": {score, scale, comment, by}}: either may be absent.
    Column("ratings", JSONB, nullable=False, server_default="{}"),
    # {type, reasons, status, by}, or NULL while unclassified (SQL NULL, not JSON null: the
    # replay's COPY writes None so, and the copies must compare equal).
    Column("classification", JSONB(none_as_null=True)),
    # Full-text search (`q=`, see `search`): the title and the customer's fields, computed by
    # Postgres from the row; and every message's text, folded in as messages are projected.
    Column("profile_search", TSVECTOR, Computed(PROFILE_SEARCH_SQL, persisted=True)),
    Column("messages_search", TSVECTOR, nullable=False, server_default=""),
)
SEARCH_COLUMNS = frozenset({"profile_search", "messages_search"})
"""Maintained apart from the dialog's row (`projection`), and never sent to a client."""

# The timeline: customer, operator, note and system messages, with delivery per outbound one.
messages = Table(
    "messages",
    read_model,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    Column("dialog_id", UUID(as_uuid=True), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("direction", Text, nullable=False),
    Column("author_id", Text),
    Column("text", Text),
    Column("attachments", JSONB, nullable=False),
    Column("reply_to", UUID(as_uuid=True)),
    Column("mentions", ARRAY(Text), nullable=False, server_default="{}"),
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

# -- the write side ------------------------------------------------------------------------

# Conversation key -> its current (latest) dialog. Its row lock serialises inbound handling
# per conversation, so concurrent consumers can never open two dialogs for one conversation.
conversations = Table(
    "conversations",
    write_side,
    Column("conversation_key", Text, primary_key=True),
    Column("dialog_id", UUID(as_uuid=True)),
)

# Delivery receipts that overtook the MessageDispatched telling us the provider message id.
pending_receipts = Table(
    "pending_receipts",
    write_side,
    Column("conversation_key", Text, primary_key=True),
    Column("provider_message_id", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("reason", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Customers' messages by their provider id: a redelivered or edited message finds its dialog.
inbound_messages = Table(
    "inbound_messages",
    write_side,
    Column("conversation_key", Text, primary_key=True),
    Column("external_message_id", Text, primary_key=True),
    Column("dialog_id", UUID(as_uuid=True), nullable=False),
    Column("message_id", UUID(as_uuid=True), nullable=False),
)

# Our messages to customers, with the id the provider gave them once sent: what a delivery
# receipt names, and the conversation whose lock orders a dispatch against its receipts.
outbound_messages = Table(
    "outbound_messages",
    write_side,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    Column("dialog_id", UUID(as_uuid=True), nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("provider_message_id", Text),
)

# -- the operators' workspace -------------------------------------------------------------

# Canned answers for the lines they name; `text` is a template (`domain.templates`).
quick_replies = Table(
    "quick_replies",
    workspace,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("category", Text),
    Column("lines", ARRAY(Text), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What an operator has typed and not sent yet, per dialog (kept across sessions).
drafts = Table(
    "drafts",
    workspace,
    Column("operator_id", Text, primary_key=True),
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- CRM cards (migration 0009) ---------------------------------------------------------------

# What the dialog list and dialog JSON show of a CRM customer: their contact's current name
# and labels, and their deals. Consumed from openlines.crm.v1 (crm_cards.py), not in dialogs'
# own events, so a rebuild of the read model leaves it be (write_side).
crm_cards = Table(
    "crm_cards",
    write_side,
    Column("customer_id", UUID(as_uuid=True), primary_key=True),
    Column("contact_id", UUID(as_uuid=True)),
    Column("contact_name", Text),
    Column("labels", ARRAY(Text), nullable=False),
    Column("deal_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
)
