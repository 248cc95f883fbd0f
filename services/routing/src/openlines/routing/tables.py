"""Routing's own tables (schema `routing`); created by migrations/versions/0001."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# Presence and capacity per operator. `active` and `reserved` always equal the number of
# dialog_slots in that status for the operator: they change in the same transaction, and
# capacity is taken with a conditional UPDATE on this row (see store.try_reserve).
operators = Table(
    "operators",
    metadata,
    Column("operator_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("status_changed_at", DateTime(timezone=True)),
    Column("max_dialogs", Integer, nullable=False),
    Column("active", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("last_assigned_at", DateTime(timezone=True)),
)

# One row per dialog routing has heard of; the waiting queue is the rows with status 'queued'.
dialog_slots = Table(
    "dialog_slots",
    metadata,
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("line_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("operator_id", Text),
    Column("priority", Integer, nullable=False),
    Column("queued_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
