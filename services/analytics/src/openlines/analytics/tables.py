"""analytics' read model (schema `analytics`); created by migrations/versions/0001.

`dialog_metrics` is the metrics fold of each dialog (metrics.py), one row per dialog, for the
CSV export; `report_facts` holds the dated, attributed facts the summary aggregates.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

metadata = MetaData()

dialog_metrics = Table(
    "dialog_metrics",
    metadata,
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("channel_type", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("operator_id", Text),
    Column("closed_at", DateTime(timezone=True)),
    Column("close_reason", Text),
    Column("first_response_seconds", Float),
    Column("first_response_by", Text),
    Column("next_response_seconds", ARRAY(Float), nullable=False),
    Column("resolution_seconds", Float),
    Column("transfers", Integer, nullable=False),
    Column("reopens", Integer, nullable=False),
    Column("messages_in", Integer, nullable=False),
    Column("messages_out", Integer, nullable=False),
    Column("queue_seconds", Float, nullable=False),
    Column("sla_warnings", Integer, nullable=False),
    Column("sla_breaches", Integer, nullable=False),
    Column("csat_score", Integer),
    Column("operator_rating", Integer),
    Column("waiting_since", DateTime(timezone=True)),
    Column("queued_since", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
)

report_facts = Table(
    "report_facts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("dialog_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text),
    Column("channel_type", Text),
    Column("operator_id", Text),
    Column("value", Float),
)
