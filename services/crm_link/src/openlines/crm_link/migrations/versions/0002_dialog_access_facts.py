"""crm-link dialogs: status, assignee and participants, for the access policy

Revision ID: crm0002
Revises: crm0001

Dialogs projected before this revision read as unassigned (what crm-link assumed of every
dialog until now) until their next assignment, transfer, close or reopen moves them; a
rebuild from the dialogs topic sets them exactly.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "crm0002"
down_revision = "crm0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "dialogs", sa.Column("status", sa.Text, nullable=False, server_default="unassigned")
    )
    op.add_column("dialogs", sa.Column("assignee_id", sa.Text))
    op.add_column(
        "dialogs",
        sa.Column(
            "participants", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
        ),
    )
