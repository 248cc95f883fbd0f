"""Routing's own tables (schema `routing`); created by migrations/versions/0001."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# Presence and capacity per operator. `active` equals the number of the operator's active
# dialog_slots and `reserved` that of their reserved ones plus their stale_offers: they change
# in the same transaction, and capacity is taken with a conditional UPDATE on this row (see
# store.try_reserve).
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
    # A dialog re-routed because its assignee did not answer goes to someone else first.
    Column("passed_over", Text),
)

# A reservation that expired unanswered still holds a unit of its operator's capacity: the
# AssignDialog already sent may yet be applied by dialogs (which may lag), and that operator
# must then have room for it. Released when the dialog is assigned, closed or transferred.
stale_offers = Table(
    "stale_offers",
    metadata,
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("operator_id", Text, primary_key=True),
    Column("expired_at", DateTime(timezone=True), nullable=False),
)

# Bitrix24's "pin to me": a customer's conversation on a line pinned to an operator, whose
# next dialogs there are offered to that operator first (kept from DialogPinned).
pins = Table(
    "pins",
    metadata,
    Column("line_id", Text, primary_key=True),
    Column("conversation_key", Text, primary_key=True),
    Column("operator_id", Text, nullable=False),
    Column("pinned_at", DateTime(timezone=True), nullable=False),
)

# What the SLA, auto-close and re-route timers of a dialog count from, folded from every event
# of its stream (see clocks.py); `version` is the last one applied, which the commands the
# timers send carry so that dialogs ignores them once the dialog has changed.
dialog_clocks = Table(
    "dialog_clocks",
    metadata,
    Column("dialog_id", UUID(as_uuid=True), primary_key=True),
    Column("line_id", Text, nullable=False),
    Column("channel_id", Text),
    Column("version", Integer, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("assignee_id", Text),
    Column("assigned_at", DateTime(timezone=True)),
    Column("waiting_since", DateTime(timezone=True)),
    Column("last_message_at", DateTime(timezone=True), nullable=False),
    Column("sla_reached", Text),
)
