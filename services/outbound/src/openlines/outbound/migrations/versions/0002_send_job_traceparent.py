"""send_jobs.traceparent: the reply's trace, carried to the provider call and the outcome

Revision ID: outbound0002
Revises: outbound0001
"""

import sqlalchemy as sa
from alembic import op

revision = "outbound0002"
down_revision = "outbound0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send_jobs", sa.Column("traceparent", sa.Text))


def downgrade() -> None:
    op.drop_column("send_jobs", "traceparent")
