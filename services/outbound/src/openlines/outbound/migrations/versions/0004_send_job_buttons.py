"""send_jobs.buttons: the buttons to show under a sent message (the CSAT rating request)

A JSON list of {"text", "data"}; NULL (as for every existing row) is a message without
buttons.

Revision ID: outbound0004
Revises: outbound0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "outbound0004"
down_revision = "outbound0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send_jobs", sa.Column("buttons", JSONB))


def downgrade() -> None:
    op.drop_column("send_jobs", "buttons")
