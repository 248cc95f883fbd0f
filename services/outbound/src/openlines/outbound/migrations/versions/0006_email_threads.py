"""email_threads: what outbound knows of each e-mail conversation, to thread its replies

Filled from the customers' MessageReceived (their subject and Message-IDs) and from the replies
outbound sent (their Message-IDs), so that a reply carries `Re: <subject>`, `In-Reply-To` and
`References`.

Revision ID: outbound0006
Revises: outbound0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "outbound0006"
down_revision = "outbound0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_threads",
        sa.Column("conversation_key", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text),
        sa.Column("last_inbound_id", sa.Text),
        # Oldest first, trimmed to the root and the newest (outbound.mail.REFERENCES_MAX).
        sa.Column("message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("email_threads")
