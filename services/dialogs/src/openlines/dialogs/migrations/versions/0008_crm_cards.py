"""dialogs crm_cards: a CRM customer's contact name, labels and deals, for the dialog JSON

Revision ID: dialogs0008
Revises: dialogs0007

Filled from openlines.crm.v1 as contacts and deals are made, edited and merged from here on.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "dialogs0008"
down_revision = "dialogs0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_cards",
        sa.Column("customer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("contact_name", sa.Text),
        sa.Column("labels", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column(
            "deal_ids",
            ARRAY(UUID(as_uuid=True)),
            nullable=False,
            server_default=sa.text("'{}'::uuid[]"),
        ),
    )
