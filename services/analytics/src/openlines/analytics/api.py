"""Reports API: the summary and the per-dialog CSV export.

Who sees which figures is the suite's one access policy (`Scope.sees_report_figure`):
supervisors and chat admins the lines they supervise, operators only their own figures.
The metric definitions are in metrics.py (and the README's "Reports and metric definitions").
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.analytics import queries
from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.http import routes
from openlines.kit.http.auth import require_principal

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=366)
# Far enough apart for any report, near enough that a default window around them never
# leaves the range of datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _iso_8601(value: object) -> object:
    # pydantic would also read "618" as seconds since 1970: a report window is ISO 8601 only.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date and time") from None
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]


@dataclass(frozen=True)
class ApiContext:
    engine: AsyncEngine
    lines: LinesConfig
    csv_chunk_rows: int

    async def scope(self, request: web.Request) -> Scope:
        return Scope.of(await require_principal(request), self.lines)


CONTEXT = web.AppKey("analytics", ApiContext)


class Window(routes.QueryModel):
    """A time window, [from, to): by default the 7 days up to now."""

    since: IsoDatetime | None = Field(
        default=None, alias="from", description="start, inclusive (ISO 8601 with a UTC offset)"
    )
    until: IsoDatetime | None = Field(
        default=None, alias="to", description="end, exclusive (ISO 8601 with a UTC offset)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for bound in (self.since, self.until):
            if bound is not None and not EARLIEST <= bound < LATEST:
                raise ValueError(f"from and to lie between {EARLIEST.year} and {LATEST.year}")
        if self.since is not None and self.until is not None:
            if self.since >= self.until:
                raise ValueError("from must be before to")
            if self.until - self.since > MAX_WINDOW:
                raise ValueError(f"the window spans at most {MAX_WINDOW.days} days")
        return self

    def bounds(self) -> tuple[datetime, datetime]:
        until = self.until or (
            self.since + DEFAULT_WINDOW if self.since is not None else datetime.now(UTC)
        )
        return self.since or until - DEFAULT_WINDOW, until


class SummaryParams(Window):
    group_by: Literal["operator", "line", "channel", "day"] = Field(
        default="day", description="what each row stands for"
    )


class SummaryRow(BaseModel):
    key: str | None = Field(
        description="the operator id, line id, channel id or UTC day (YYYY-MM-DD) of the row; "
        "null for figures of no one (dialogs opened, by operator)"
    )
    dialogs_opened: int
    dialogs_closed: int
    first_response_p50_seconds: float | None
    first_response_p90_seconds: float | None
    resolution_p50_seconds: float | None
    resolution_p90_seconds: float | None
    sla_warnings: int
    sla_breaches: int
    sla_compliance_percent: float | None = Field(
        description="answered waits without a breach, in % of all answered waits"
    )
    csat_average: float | None
    csat_count: int
    transfers: int


class Summary(BaseModel):
    """Report figures per operator, line, channel or day."""

    model_config = ConfigDict(populate_by_name=True)

    since: datetime = Field(alias="from")
    until: datetime = Field(alias="to")
    group_by: str
    rows: list[SummaryRow]


def install(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    routes.install(app, sys.modules[__name__])


@routes.get(
    "/api/v1/reports/summary",
    summary="Dialogs, response and resolution times, SLA and CSAT, grouped",
    query=SummaryParams,
    responses={200: Summary},
)
async def get_summary(request: web.Request, *, query: SummaryParams) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request)
    since, until = query.bounds()
    rows = await queries.summary(ctx.engine, scope, since, until, query.group_by)
    body = Summary(since=since, until=until, group_by=query.group_by, rows=rows)
    return web.json_response(text=body.model_dump_json(by_alias=True))


@routes.get(
    "/api/v1/reports/dialogs.csv",
    summary="One CSV row per dialog opened in the window, with every metric",
    query=Window,
    responses={200: "text/csv, a header line then one line per dialog"},
    content_type="text/csv",
)
async def get_dialogs_csv(request: web.Request, *, query: Window) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    scope = await ctx.scope(request)
    since, until = query.bounds()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="dialogs.csv"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(_csv([queries.CSV_COLUMNS]))
    async for rows in queries.dialog_rows(ctx.engine, scope, since, until, ctx.csv_chunk_rows):
        await response.write(_csv([_cells(row) for row in rows]))
    await response.write_eof()
    return response


def _csv(rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _cells(row: Sequence[Any]) -> list[Any]:
    return [_cell(value) for value in row]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, list):  # every next response time, in order
        return " ".join(f"{v:g}" for v in value)
    return value
