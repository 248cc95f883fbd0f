"""send_jobs.kind and target_message_id: operators' edits and deletions as jobs too

An edit or deletion of a sent message is a job of its own (`message_id` is the job's id,
`target_message_id` the message it changes) in the same table, so that it queues behind the
send of its message like any later reply of the conversation. Existing rows are sends.

Revision ID: outbound0003
Revises: outbound0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "outbound0003"
down_revision = "outbound0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("send_jobs", sa.Column("kind", sa.Text, nullable=False, server_default="send"))
    op.add_column("send_jobs", sa.Column("target_message_id", UUID(as_uuid=True)))
    op.create_check_constraint(
        "send_jobs_kind_check", "send_jobs", "kind IN ('send', 'edit', 'delete')"
    )


def downgrade() -> None:
    op.drop_constraint("send_jobs_kind_check", "send_jobs")
    op.drop_column("send_jobs", "target_message_id")
    op.drop_column("send_jobs", "kind")
