"""send_jobs.buttons: the buttons to show under a sent message (the CSAT rating request)

A JSON list of {"text", "data"}; NULL (as for every existing row) is a message without
buttons.

Revision ID: outbound0006
Revises: outbound0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "outbound0006"
down_revision = "outbound0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send_jobs", sa.Column("buttons", JSONB))


def downgrade() -> None:
    op.drop_column("send_jobs", "buttons")
