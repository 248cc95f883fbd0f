"""The reports' SQL: the summary over `report_facts`, the per-dialog export over
`dialog_metrics`. Both see only what the caller's `Scope` reaches (report_visible_where)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.analytics.metrics import FactKind
from openlines.analytics.tables import dialog_metrics, report_facts
from openlines.kit.access import Scope, report_visible_where

GroupBy = Literal["operator", "line", "channel", "day"]

_f = report_facts.c
_KEYS: dict[str, ColumnElement[Any]] = {
    "operator": _f.operator_id,
    "line": _f.line_id,
    "channel": _f.channel_id,
    "day": func.to_char(func.timezone("UTC", _f.at), "YYYY-MM-DD"),
}


def _count(*kinds: FactKind) -> ColumnElement[int]:
    return func.count().filter(_f.kind.in_([k.value for k in kinds]))


def _percentile(fraction: float, kind: FactKind) -> ColumnElement[float]:
    return func.percentile_cont(fraction).within_group(_f.value).filter(_f.kind == kind.value)


def summary_query(scope: Scope, since: datetime, until: datetime, group_by: GroupBy) -> Select[Any]:
    key = _KEYS[group_by].label("key")
    return (
        select(
            key,
            _count(FactKind.OPENED).label("dialogs_opened"),
            _count(FactKind.CLOSED).label("dialogs_closed"),
            _percentile(0.5, FactKind.FIRST_RESPONSE).label("first_response_p50_seconds"),
            _percentile(0.9, FactKind.FIRST_RESPONSE).label("first_response_p90_seconds"),
            _percentile(0.5, FactKind.RESOLUTION).label("resolution_p50_seconds"),
            _percentile(0.9, FactKind.RESOLUTION).label("resolution_p90_seconds"),
            _count(FactKind.FIRST_RESPONSE, FactKind.NEXT_RESPONSE).label("responses"),
            _count(FactKind.SLA_WARNING).label("sla_warnings"),
            _count(FactKind.SLA_BREACH).label("sla_breaches"),
            func.avg(_f.value).filter(_f.kind == FactKind.RATING.value).label("csat_average"),
            _count(FactKind.RATING).label("csat_count"),
            _count(FactKind.TRANSFER).label("transfers"),
        )
        .where(
            _f.at >= since,
            _f.at < until,
            report_visible_where(scope, line_id=_f.line_id, operator_id=_f.operator_id),
        )
        .group_by(key)
        .order_by(key.asc().nulls_first())
    )


def compliance_percent(responses: int, breaches: int) -> float | None:
    """Share of answered waits without a breach: each breach is one wait past the red
    threshold (routing emits one per wait). None without responses."""
    if responses == 0:
        return None
    return round(100.0 * max(0, responses - breaches) / responses, 2)


async def summary(
    engine: AsyncEngine, scope: Scope, since: datetime, until: datetime, group_by: GroupBy
) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(summary_query(scope, since, until, group_by))).mappings().all()
    out = []
    for row in rows:
        figures = dict(row)
        responses = figures.pop("responses")
        figures["sla_compliance_percent"] = compliance_percent(responses, row["sla_breaches"])
        if figures["csat_average"] is not None:
            figures["csat_average"] = round(float(figures["csat_average"]), 2)
        out.append(figures)
    return out


# -- the per-dialog export ---------------------------------------------------------------------

_m = dialog_metrics.c
CSV_COLUMNS: Sequence[str] = (
    "dialog_id",
    "line_id",
    "channel_id",
    "channel_type",
    "status",
    "operator_id",
    "opened_at",
    "closed_at",
    "close_reason",
    "first_response_seconds",
    "first_response_by",
    "next_response_seconds",
    "resolution_seconds",
    "transfers",
    "reopens",
    "messages_in",
    "messages_out",
    "queue_seconds",
    "sla_warnings",
    "sla_breaches",
    "csat_score",
    "operator_rating",
)


def dialogs_query(scope: Scope, since: datetime, until: datetime) -> Select[Any]:
    """Dialogs opened in [since, until) that the caller's reports reach (a dialog belongs to
    its line and its responsible operator), in opening order."""
    return (
        select(*(_m[name] for name in CSV_COLUMNS))
        .where(
            and_(_m.opened_at >= since, _m.opened_at < until),
            report_visible_where(scope, line_id=_m.line_id, operator_id=_m.operator_id),
        )
        .order_by(_m.opened_at, _m.dialog_id)
    )


async def dialog_rows(
    engine: AsyncEngine, scope: Scope, since: datetime, until: datetime, chunk: int
) -> AsyncIterator[Sequence[Any]]:
    """The export's rows in chunks, through a server-side cursor: never all in memory."""
    query = dialogs_query(scope, since, until).execution_options(yield_per=chunk)
    async with engine.connect() as conn:
        result = await conn.stream(query)
        async for rows in result.partitions(chunk):
            yield rows
