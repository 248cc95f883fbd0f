"""The reporting read model, kept by one function over events: `apply(conn, envelope)`.

It loads the dialog's metrics, folds the event in (metrics.step), saves them and records the
facts the step yielded, all in the caller's transaction (the consumer's batch, or a replay's).
Dialog events older than what the row already holds (a redelivery, a replay over a live
model) change nothing; SLA events come from routing's streams, whose versions are not the
dialog's, and are kept apart by the inbox and by `report_facts_once`.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.analytics.metrics import DialogMetrics, Fact, step
from openlines.analytics.tables import dialog_metrics, report_facts
from openlines.events.envelope import Envelope
from openlines.events.topics import DIALOGS, TOPICS

_METRIC_COLUMNS = tuple(f.name for f in fields(DialogMetrics))
_DIALOG_EVENTS = frozenset(TOPICS[DIALOGS].event_types)

# Built once: these run per consumed event (see crm_link/projection.py on why).
_LOAD = (
    select(dialog_metrics)
    .where(dialog_metrics.c.dialog_id == bindparam("load_dialog_id"))
    .with_for_update()
)
_insert = insert(dialog_metrics)
_SAVE = _insert.on_conflict_do_update(
    index_elements=[dialog_metrics.c.dialog_id],
    set_={
        name: _insert.excluded[name]
        for name in (*_METRIC_COLUMNS, "version")
        if name != "dialog_id"
    },
)
_RECORD_FACTS = insert(report_facts).on_conflict_do_nothing(constraint="report_facts_once")


async def apply(conn: AsyncConnection, envelope: Envelope[Any]) -> None:
    payload = envelope.payload
    row = (await conn.execute(_LOAD, {"load_dialog_id": payload.dialog_id})).mappings().first()
    before = _metrics(row) if row is not None else None
    version = row["version"] if row is not None else 0
    from_dialog = type(payload) in _DIALOG_EVENTS
    if from_dialog and envelope.stream_version <= version:
        return
    after, facts = step(before, payload, envelope.occurred_at)
    if after is not None:
        if from_dialog:
            version = envelope.stream_version
        if after != before or version != (row["version"] if row is not None else 0):
            await conn.execute(_SAVE, _row(after, version))
    if facts:
        await conn.execute(_RECORD_FACTS, [_fact_row(envelope, f) for f in facts])


def _metrics(row: Any) -> DialogMetrics:
    values = {name: row[name] for name in _METRIC_COLUMNS}
    values["next_response_seconds"] = tuple(values["next_response_seconds"] or ())
    return DialogMetrics(**values)


def _row(metrics: DialogMetrics, version: int) -> dict[str, Any]:
    values = asdict(metrics)
    values["next_response_seconds"] = list(metrics.next_response_seconds)
    values["version"] = version
    return values


def _fact_row(envelope: Envelope[Any], fact: Fact) -> dict[str, Any]:
    return {
        "event_id": envelope.event_id,
        "dialog_id": envelope.payload.dialog_id,
        "kind": fact.kind.value,
        "at": fact.at,
        "line_id": fact.line_id,
        "channel_id": fact.channel_id,
        "channel_type": fact.channel_type,
        "operator_id": fact.operator_id,
        "value": fact.value,
    }
