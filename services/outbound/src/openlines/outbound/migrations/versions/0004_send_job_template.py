"""send_jobs.template: a reply sent as a provider's approved template (WhatsApp)

Null for everything else; the job's `text` is the template filled in, as the timeline shows it.

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
    op.add_column("send_jobs", sa.Column("template", JSONB))


def downgrade() -> None:
    op.drop_column("send_jobs", "template")
