"""crm-link's read model (schema `crm_link`); created by migrations/versions/0001.

The source of truth is the customer streams in the kit's event store; these tables are the
projection the API reads, updated in the same transaction as each append.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("customer_id", UUID(as_uuid=True), primary_key=True),
    Column("channel_type", Text, nullable=False),
    Column("external_user_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("merged_into", UUID(as_uuid=True)),
)

# The external accounts a customer was seen on or linked to (merges bring their accounts).
customer_channels = Table(
    "customer_channels",
    metadata,
    Column("customer_id", UUID(as_uuid=True), primary_key=True),
    Column("channel_id", Text, primary_key=True),
    Column("channel_type", Text, nullable=False),
    Column("external_user_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
)

leads = Table(
    "leads",
    metadata,
    Column("lead_id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("auto", Boolean, nullable=False),
    Column("source_dialog_id", UUID(as_uuid=True)),
    Column("actor_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("converted_at", DateTime(timezone=True)),
    Column("converted_by", Text),
)

# Contacts, companies and deals (migration 0003). `responsible`: who created or converted them.
contacts = Table(
    "contacts",
    metadata,
    Column("contact_id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("phones", ARRAY(Text), nullable=False),
    Column("emails", ARRAY(Text), nullable=False),
    Column("phone_keys", ARRAY(Text), nullable=False),
    Column("note", Text, nullable=False),
    Column("labels", ARRAY(Text), nullable=False),
    Column("responsible", ARRAY(Text), nullable=False),
    Column("source_lead_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("merged_into", UUID(as_uuid=True)),
)

companies = Table(
    "companies",
    metadata,
    Column("company_id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("responsible", ARRAY(Text), nullable=False),
    Column("source_lead_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

deals = Table(
    "deals",
    metadata,
    Column("deal_id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("amount_minor", BigInteger),
    Column("currency", Text),
    Column("stage", Text, nullable=False),
    Column("contact_id", UUID(as_uuid=True)),
    Column("company_id", UUID(as_uuid=True)),
    Column("source_lead_id", UUID(as_uuid=True)),
    Column("source_dialog_id", UUID(as_uuid=True)),
    Column("responsible", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Every dialog crm-link saw opening, its CRM link, its last customer-visible activity, and what
# the access policy needs to know of it (status, assignee, participants: migration 0002;
# mentions: 0003).
dialogs = Table(
    "dialogs",
    metadata,
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("channel_type", Text, nullable=False),
    Column("external_user_id", Text, nullable=False),
    Column("customer_name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("lead_id", UUID(as_uuid=True)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_activity_at", DateTime(timezone=True), nullable=False),
    Column("last_message_at", DateTime(timezone=True)),
    Column("last_message", JSONB),
    Column("status", Text, nullable=False),
    Column("assignee_id", Text),
    Column("participants", ARRAY(Text), nullable=False),
    Column("customer_phone", Text),
    Column("customer_email", Text),
    Column("mentioned", ARRAY(Text), nullable=False),
    Column("message_count", Integer, nullable=False),
)
