"""dialogs.pinned_to: the operator a dialog is pinned to (Bitrix24's "pin to me")

No dialog was pinned before this revision (nothing recorded DialogPinned), so the column
starts empty; a rebuild fills it from the events like every read-model column.

Revision ID: dialogs0004
Revises: dialogs0002
"""

import sqlalchemy as sa
from alembic import op

revision = "dialogs0004"
down_revision = "dialogs0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dialogs", sa.Column("pinned_to", sa.Text))


def downgrade() -> None:
    op.drop_column("dialogs", "pinned_to")
