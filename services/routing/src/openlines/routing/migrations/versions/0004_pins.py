"""routing: pins, a customer's conversation pinned to an operator on a line

Bitrix24's "pin to me": the conversation's next dialogs on the line are offered to the
operator first. Kept from DialogPinned; no dialog was pinned before this revision.

Revision ID: routing0004
Revises: routing0002
"""

import sqlalchemy as sa
from alembic import op

revision = "routing0004"
down_revision = "routing0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pins",
        sa.Column("line_id", sa.Text, primary_key=True),
        sa.Column("conversation_key", sa.Text, primary_key=True),
        sa.Column("operator_id", sa.Text, nullable=False),
        sa.Column(
            "pinned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("pins")
