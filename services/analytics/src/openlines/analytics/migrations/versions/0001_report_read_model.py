"""the reporting read model: per-dialog metrics and the facts of the summary

Revision ID: analytics0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "analytics0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dialog_metrics",
        sa.Column("dialog_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("channel_type", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("operator_id", sa.Text),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("close_reason", sa.Text),
        sa.Column("first_response_seconds", sa.Float),
        sa.Column("first_response_by", sa.Text),
        sa.Column("next_response_seconds", ARRAY(sa.Float), nullable=False, server_default="{}"),
        sa.Column("resolution_seconds", sa.Float),
        sa.Column("transfers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reopens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("messages_in", sa.Integer, nullable=False, server_default="0"),
        sa.Column("messages_out", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queue_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("sla_warnings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sla_breaches", sa.Integer, nullable=False, server_default="0"),
        sa.Column("csat_score", sa.Integer),
        sa.Column("operator_rating", sa.Integer),
        sa.Column("waiting_since", sa.DateTime(timezone=True)),
        sa.Column("queued_since", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )
    # The CSV export walks dialogs by opening time.
    op.create_index("dialog_metrics_opened", "dialog_metrics", ["opened_at", "dialog_id"])
    op.create_table(
        "report_facts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("dialog_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("line_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text),
        sa.Column("channel_type", sa.Text),
        sa.Column("operator_id", sa.Text),
        sa.Column("value", sa.Float),
        # One fact of a kind per event: a replay over a live model adds nothing twice.
        sa.UniqueConstraint("event_id", "kind", name="report_facts_once"),
    )
    # The summary reads a time window.
    op.create_index("report_facts_at", "report_facts", ["at"])
