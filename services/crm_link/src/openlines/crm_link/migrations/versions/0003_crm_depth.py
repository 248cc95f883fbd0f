"""crm-link: contacts, companies, deals, conversions, merges, and more of each dialog

Revision ID: crm0003
Revises: crm0002

Contacts, companies and deals (from conversions and from chats), a lead's conversion, a merged
customer's survivor, a customer's accounts on one channel (a merge may bring a second one), and
of each dialog: the customer's phone and e-mail (to pre-fill a contact), the operators
@mentioned in its notes (the access policy's *read*) and its count of customer-visible messages.
Dialogs projected before this revision count messages from here on.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "crm0003"
down_revision = "crm0002"
branch_labels = None
depends_on = None

_NO_TEXTS = sa.text("'{}'::text[]")


def _texts(name: str) -> sa.Column:
    return sa.Column(name, ARRAY(sa.Text), nullable=False, server_default=_NO_TEXTS)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("contact_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("name", sa.Text, nullable=False),
        _texts("phones"),
        _texts("emails"),
        _texts("phone_keys"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        _texts("labels"),
        _texts("responsible"),
        sa.Column("source_lead_id", UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_into", UUID(as_uuid=True)),
    )
    op.create_index("contacts_by_phone", "contacts", ["phone_keys"], postgresql_using="gin")
    op.create_table(
        "companies",
        sa.Column("company_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("name", sa.Text, nullable=False),
        _texts("responsible"),
        sa.Column("source_lead_id", UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "deals",
        sa.Column("deal_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("currency", sa.Text),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("company_id", UUID(as_uuid=True)),
        sa.Column("source_lead_id", UUID(as_uuid=True)),
        sa.Column("source_dialog_id", UUID(as_uuid=True)),
        _texts("responsible"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("leads", sa.Column("converted_at", sa.DateTime(timezone=True)))
    op.add_column("leads", sa.Column("converted_by", sa.Text))
    op.add_column("customers", sa.Column("merged_into", UUID(as_uuid=True)))
    op.add_column("dialogs", sa.Column("customer_phone", sa.Text))
    op.add_column("dialogs", sa.Column("customer_email", sa.Text))
    op.add_column("dialogs", _texts("mentioned"))
    op.add_column(
        "dialogs", sa.Column("message_count", sa.Integer, nullable=False, server_default="0")
    )
    # A customer may hold two accounts of one channel once merged (two Telegram users).
    op.drop_constraint("customer_channels_pkey", "customer_channels", type_="primary")
    op.create_primary_key(
        "customer_channels_pkey",
        "customer_channels",
        ["customer_id", "channel_id", "external_user_id"],
    )
    # The customers identity constraint stays: a customer row is still one identity.
