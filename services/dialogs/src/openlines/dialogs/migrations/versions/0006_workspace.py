"""dialogs workspace: quick_replies and drafts

The operators' own data, not derived from events: a rebuild of the read model never touches
these tables.

Revision ID: dialogs0006
Revises: dialogs0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "dialogs0006"
down_revision = "dialogs0005"
branch_labels = None
depends_on = None

WORKSPACE = "workspace: operators' own data (quick replies, drafts); not in events, never rebuilt"


def upgrade() -> None:
    op.create_table(
        "quick_replies",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("category", sa.Text),
        sa.Column("lines", ARRAY(sa.Text), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The list's keyset order; the lines filter (`&&`) uses the GIN index.
    op.create_index("quick_replies_title_idx", "quick_replies", ["title", "id"])
    op.create_index("quick_replies_lines_idx", "quick_replies", ["lines"], postgresql_using="gin")
    op.create_table(
        "drafts",
        sa.Column("operator_id", sa.Text, primary_key=True),
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for table in ("quick_replies", "drafts"):
        op.create_table_comment(table, WORKSPACE)


def downgrade() -> None:
    op.drop_table("drafts")
    op.drop_table("quick_replies")
