"""The reporting read model, kept by one function over events: `apply(conn, envelope)`.

It loads the dialog's metrics, folds the event in (metrics.step), saves them and records the
facts the step yielded, all in the caller's transaction (the consumer's batch, or a replay's).
Dialog events older than what the row already holds (a redelivery, a replay over a live
model) change nothing; SLA events come from routing's streams, whose versions are not the
dialog's: the fact each one yields is the mark that it was applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.analytics.metrics import (
    DIALOG_EVENTS,
    SLA_EVENTS,
    DialogMetrics,
    Fact,
    FactKind,
    step,
)
from openlines.analytics.tables import dialog_metrics, report_facts
from openlines.events.catalog import DialogRated
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.topics import DIALOGS, ROUTING, TOPICS

# What the read model is built from: the live subscription registers these, and a replay
# (`openlines replay analytics`) reads these topics and hands their batches to `apply_batch`.
TOPICS_READ = (DIALOGS, ROUTING)
# DialogRated: the customer's CSAT answer (and the operator's rating of the customer), which
# metrics.step reads by its type.
APPLIED: tuple[type[EventPayload], ...] = (*DIALOG_EVENTS, *SLA_EVENTS, DialogRated)

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
_SEEN = select(report_facts.c.id).where(report_facts.c.event_id == bindparam("seen_event_id"))
_RECORD_FACTS = insert(report_facts).on_conflict_do_nothing(constraint="report_facts_once")
# SLA markers recorded before their dialog's row existed (routing's topic and the dialogs topic
# have no order between them): the row, once opened, counts them.
_EARLY_SLA = (
    select(report_facts.c.kind, func.count())
    .where(
        report_facts.c.dialog_id == bindparam("early_dialog_id"),
        report_facts.c.kind.in_([FactKind.SLA_WARNING.value, FactKind.SLA_BREACH.value]),
    )
    .group_by(report_facts.c.kind)
)


async def apply(conn: AsyncConnection, envelope: Envelope[Any]) -> None:
    payload = envelope.payload
    row = (await conn.execute(_LOAD, {"load_dialog_id": payload.dialog_id})).mappings().first()
    before = _metrics(row) if row is not None else None
    version = row["version"] if row is not None else 0
    from_dialog = type(payload) in _DIALOG_EVENTS
    if from_dialog and envelope.stream_version <= version:
        return
    if (
        not from_dialog
        and (await conn.execute(_SEEN, {"seen_event_id": envelope.event_id})).first()
    ):
        return  # an SLA event has no dialog version to go by, but its fact shows it was applied
    after, facts = step(before, payload, envelope.occurred_at)
    if after is not None and before is None:
        after = await _with_early_sla(conn, after, payload.dialog_id)
    if after is not None:
        if from_dialog:
            version = envelope.stream_version
        if after != before or version != (row["version"] if row is not None else 0):
            await conn.execute(_SAVE, _row(after, version))
    if facts:
        await conn.execute(_RECORD_FACTS, [_fact_row(envelope, f) for f in facts])


async def apply_batch(conn: AsyncConnection, batch: Sequence[Envelope[Any]]) -> None:
    """A replay's batch (the kit's `BatchHandler`), in order; events the read model does not
    follow are skipped."""
    for envelope in batch:
        if isinstance(envelope.payload, APPLIED):
            await apply(conn, envelope)


async def _with_early_sla(
    conn: AsyncConnection, metrics: DialogMetrics, dialog_id: Any
) -> DialogMetrics:
    rows = (await conn.execute(_EARLY_SLA, {"early_dialog_id": dialog_id})).all()
    counts: dict[str, int] = {kind: count for kind, count in rows}
    if not counts:
        return metrics
    return replace(
        metrics,
        sla_warnings=metrics.sla_warnings + counts.get(FactKind.SLA_WARNING.value, 0),
        sla_breaches=metrics.sla_breaches + counts.get(FactKind.SLA_BREACH.value, 0),
    )


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
