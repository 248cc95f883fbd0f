"""dialogs read model: who is @mentioned in a dialog's notes

`dialogs.mentioned` holds the operators mentioned in the dialog's notes: the access policy lets
them read it (`openlines.kit.access.readable_where` is the SQL twin of `Scope.can_read`), and
`messages.mentions` shows each note's mentions in the timeline. No note mentioned anyone before
this revision (there were no notes), so both start empty; a rebuild fills them from the events.

Revision ID: dialogs0003
Revises: dialogs0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "dialogs0003"
down_revision = "dialogs0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, column in (("dialogs", "mentioned"), ("messages", "mentions")):
        op.add_column(
            table,
            sa.Column(column, ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        )


def downgrade() -> None:
    op.drop_column("messages", "mentions")
    op.drop_column("dialogs", "mentioned")
