"""analytics on the real broker and Postgres: dialog and routing events in, reports out.

Each test plays dialogs and routing (publishing their events) in a window of time of its own,
a day in the past, so the reports of one test never see another's figures.
"""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from openlines.analytics.app import build_service
from openlines.analytics.settings import AnalyticsSettings
from openlines.analytics.tables import report_facts
from openlines.events.catalog import (
    DialogRated,
    DialogTransferred,
    Direction,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.events.testing.factories import DialogStream
from openlines.events.topics import DIALOGS, ROUTING
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing import lines
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.service import Served, isolated_settings, serving
from openlines.kit.testing.waiting import wait_handled

LINES_YAML = """
operators:
  - {id: ann, role: operator}
  - {id: bob, role: operator}
  - {id: cat, role: operator}
  - {id: sue, role: supervisor}
lines:
  - id: demo
    channels: [{id: tg-demo, type: telegram}]
    operators: [ann, bob]
  - id: vip
    channels: [{id: wa-vip, type: whatsapp}]
    operators: [cat]
"""

# A day of its own per test (see the module doc).
_days = itertools.count(1)


def a_day_of_its_own() -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=next(_days))


@dataclass
class Analytics:
    served: Served
    runtime: ServiceRuntime
    stream: DialogStream

    async def send(self, topic: str, payload: EventPayload, at: datetime) -> Envelope[Any]:
        env = self.stream.envelope(payload, occurred_at=at)
        await self.served.publisher.publish(topic, env)
        return env

    async def get(
        self, path: str, who: str, role: str = "operator", token_lines: list[str] | None = None
    ) -> aiohttp.ClientResponse:
        headers = bearer(who, role, lines=token_lines)
        async with self.served.http.get(self.served.url + path, headers=headers) as resp:
            await resp.read()
            return resp

    async def json(self, path: str, who: str, role: str = "operator", **kw: Any) -> Any:
        resp = await self.get(path, who, role, **kw)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def csv(self, path: str, who: str, role: str = "operator") -> list[dict[str, str]]:
        resp = await self.get(path, who, role)
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(await resp.text())))


@pytest.fixture(scope="module")
async def analytics(
    kafka_bootstrap: str,
    database_url: str,
    module_db_schema: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Analytics]:
    lines_file = lines.write_lines(tmp_path_factory.mktemp("analytics"), LINES_YAML)
    settings = AnalyticsSettings(
        **isolated_settings(database_url, module_db_schema, kafka_bootstrap),
        lines_file=str(lines_file),
        csv_chunk_rows=2,  # several chunks from a few dialogs
    )
    runtime = build_service(settings)
    async with serving(runtime, client_id="test-analytics") as served:
        yield Analytics(served, runtime, DialogStream())


def window(day: datetime, **params: str) -> str:
    query = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), **params}
    return "?" + "&".join(f"{k}={v}" for k, v in query.items()).replace("+", "%2B")


async def a_day_of_two_dialogs(a: Analytics) -> tuple[datetime, uuid.UUID, uuid.UUID]:
    """demo: the customer writes, ann takes it and hands it to bob, who answers after 50 s and
    closes at 120 s; an SLA warning and breach meanwhile. vip: cat answers after 10 s."""
    day = a_day_of_its_own()
    t = lambda s: day + timedelta(hours=9, seconds=s)  # noqa: E731
    d1, d2 = uuid.uuid4(), uuid.uuid4()
    await a.send(DIALOGS, factories.dialog_opened(d1), t(0))
    await a.send(DIALOGS, factories.message_appended(d1, "help"), t(0))
    await a.send(DIALOGS, factories.dialog_assigned(d1, "ann"), t(4))
    warning = await a.send(ROUTING, _sla(SlaWarningReached, d1, "ann", t(0)), t(30))
    transfer = DialogTransferred(
        dialog_id=d1, from_operator_id="ann", to_operator_id="bob", actor_id="ann"
    )
    await a.send(DIALOGS, transfer, t(35))
    breach = await a.send(ROUTING, _sla(SlaBreached, d1, "bob", t(0)), t(45))
    await a.send(DIALOGS, _reply(d1, "bob"), t(50))
    await a.send(DIALOGS, factories.message_appended(d1, "thanks"), t(60))
    await a.send(DIALOGS, _reply(d1, "bob"), t(90))
    last_demo = await a.send(DIALOGS, factories.dialog_closed(d1, "bob"), t(120))

    vip = {"channel_id": "wa-vip", "line_id": "vip"}
    await a.send(DIALOGS, factories.dialog_opened(d2, **vip), t(200))
    await a.send(DIALOGS, factories.message_appended(d2, "hi", channel_id="wa-vip"), t(200))
    await a.send(DIALOGS, factories.dialog_assigned(d2, "cat", line_id="vip"), t(202))
    last_vip = await a.send(DIALOGS, _reply(d2, "cat", channel_id="wa-vip"), t(210))
    for env in (warning, breach, last_demo, last_vip):  # the two topics are read apart
        await wait_handled(a.runtime.engine, env.event_id)
    return day, d1, d2


def _reply(dialog_id: uuid.UUID, operator: str, channel_id: str = "tg-demo") -> EventPayload:
    return factories.message_appended(
        dialog_id, "answer", direction=Direction.OUT, author_id=operator, channel_id=channel_id
    )


def _sla(
    kind: type[SlaWarningReached | SlaBreached],
    dialog_id: uuid.UUID,
    operator: str,
    since: datetime,
) -> EventPayload:
    return kind(
        dialog_id=dialog_id,
        line_id="demo",
        operator_id=operator,
        waiting_since=since,
        threshold_seconds=30,
    )


def by_key(summary: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {row["key"]: row for row in summary["rows"]}


async def test_summary_by_operator_credits_whoever_did_it(analytics: Analytics) -> None:
    day, _, _ = await a_day_of_two_dialogs(analytics)
    summary = await analytics.json(
        "/api/v1/reports/summary" + window(day, group_by="operator"), "sue", "supervisor"
    )
    rows = by_key(summary)
    assert set(rows) == {None, "ann", "bob", "cat"}
    assert rows[None]["dialogs_opened"] == 2  # no one holds a dialog when it opens
    bob = rows["bob"]
    assert (bob["dialogs_closed"], bob["first_response_p50_seconds"]) == (1, 50)
    assert bob["resolution_p50_seconds"] == 120
    # bob's answers: the first (50 s, breached) and the next (30 s): one breach in two.
    assert (bob["sla_breaches"], bob["sla_compliance_percent"]) == (1, 50.0)
    ann = rows["ann"]
    assert (ann["transfers"], ann["sla_warnings"], ann["first_response_p50_seconds"]) == (
        1,
        1,
        None,
    )
    assert rows["cat"]["first_response_p90_seconds"] == 10
    assert rows["cat"]["sla_compliance_percent"] == 100.0
    assert rows["cat"]["csat_count"] == 0 and rows["cat"]["csat_average"] is None


async def test_summary_by_line_channel_and_day(analytics: Analytics) -> None:
    day, _, _ = await a_day_of_two_dialogs(analytics)
    path = "/api/v1/reports/summary"
    lines_ = by_key(await analytics.json(path + window(day, group_by="line"), "sue", "supervisor"))
    assert (lines_["demo"]["dialogs_opened"], lines_["demo"]["dialogs_closed"]) == (1, 1)
    assert lines_["vip"]["first_response_p50_seconds"] == 10
    channels = by_key(
        await analytics.json(path + window(day, group_by="channel"), "sue", "supervisor")
    )
    assert set(channels) == {"tg-demo", "wa-vip"}
    days = await analytics.json(path + window(day, group_by="day"), "sue", "supervisor")
    assert [row["key"] for row in days["rows"]] == [day.date().isoformat()]
    assert days["rows"][0]["dialogs_opened"] == 2
    assert days["group_by"] == "day" and days["from"].startswith(day.date().isoformat())


async def test_operators_see_their_own_row_and_supervisors_their_lines(
    analytics: Analytics,
) -> None:
    day, d1, d2 = await a_day_of_two_dialogs(analytics)
    path = "/api/v1/reports/summary" + window(day, group_by="operator")
    assert [row["key"] for row in (await analytics.json(path, "bob"))["rows"]] == ["bob"]
    by_line = await analytics.json("/api/v1/reports/summary" + window(day, group_by="line"), "cat")
    assert [row["key"] for row in by_line["rows"]] == ["vip"]  # her own figures only
    narrowed = await analytics.json(path, "sue", "supervisor", token_lines=["vip"])
    assert set(by_key(narrowed)) == {None, "cat"}

    csv_path = "/api/v1/reports/dialogs.csv" + window(day)
    assert [row["dialog_id"] for row in await analytics.csv(csv_path, "bob")] == [str(d1)]
    assert await analytics.csv(csv_path, "ann") == []  # she handed it over
    every = await analytics.csv(csv_path, "sue", "supervisor")
    assert [row["dialog_id"] for row in every] == [str(d1), str(d2)]


async def test_the_csv_has_every_metric_of_each_dialog(analytics: Analytics) -> None:
    day, d1, _ = await a_day_of_two_dialogs(analytics)
    rows = await analytics.csv("/api/v1/reports/dialogs.csv" + window(day), "sue", "supervisor")
    demo = next(row for row in rows if row["dialog_id"] == str(d1))
    assert demo == demo | {
        "line_id": "demo",
        "channel_id": "tg-demo",
        "status": "closed",
        "operator_id": "bob",
        "first_response_seconds": "50.0",
        "first_response_by": "bob",
        "next_response_seconds": "30",
        "resolution_seconds": "120.0",
        "transfers": "1",
        "messages_in": "2",
        "messages_out": "2",
        "queue_seconds": "4.0",
        "sla_warnings": "1",
        "sla_breaches": "1",
        "csat_score": "",
        "close_reason": "operator",
    }


async def test_the_csv_streams_many_dialogs_in_chunks(analytics: Analytics) -> None:
    day = a_day_of_its_own()
    ids = [uuid.uuid4() for _ in range(7)]
    for i, dialog_id in enumerate(ids):
        last = await analytics.send(
            DIALOGS, factories.dialog_opened(dialog_id), day + timedelta(minutes=i)
        )
    await wait_handled(analytics.runtime.engine, last.event_id)
    rows = await analytics.csv("/api/v1/reports/dialogs.csv" + window(day), "sue", "supervisor")
    assert [row["dialog_id"] for row in rows] == [str(i) for i in ids]  # 4 chunks of 2


async def test_a_redelivered_or_older_event_changes_nothing(analytics: Analytics) -> None:
    day = a_day_of_its_own()
    dialog_id = uuid.uuid4()
    await analytics.send(DIALOGS, factories.dialog_opened(dialog_id), day)
    await analytics.send(DIALOGS, factories.message_appended(dialog_id), day)
    reply = await analytics.send(DIALOGS, _reply(dialog_id, "ann"), day + timedelta(seconds=5))
    await analytics.served.publisher.publish(DIALOGS, reply)  # the same record again
    # An older version under a new event id (a replay over the live model): ignored too.
    stale = reply.model_copy(update={"event_id": uuid.uuid4()})
    await analytics.served.publisher.publish(DIALOGS, stale)
    await wait_handled(analytics.runtime.engine, stale.event_id)
    async with analytics.runtime.engine.connect() as conn:
        counted = await conn.execute(
            select(func.count()).where(report_facts.c.dialog_id == dialog_id)
        )
        assert counted.scalar_one() == 2  # opened, first response


@pytest.mark.parametrize(
    "query",
    [
        "?group_by=week",
        "?unknown=1",
        "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "?from=2026-01-01T00:00:00",  # no offset: which day would that be?
        "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "?to=0001-01-01T00:00:00Z",  # a default window before it would not exist
        "?from=9999-12-31T23:59:59Z",
        "?to=618",  # seconds since 1970 are not a date
        "?from=yesterday",
    ],
)
async def test_bad_queries_are_400(analytics: Analytics, query: str) -> None:
    resp = await analytics.get("/api/v1/reports/summary" + query, "sue", "supervisor")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_query"


async def test_reports_need_a_token(analytics: Analytics) -> None:
    async with analytics.served.http.get(analytics.served.url + "/api/v1/reports/summary") as r:
        assert r.status == 401


async def test_csat_average_and_count_are_the_customers_ratings(analytics: Analytics) -> None:
    """Two dialogs of bob's rated 5 and 2 by their customers (4 of the operator's own ratings
    of the customer are not CSAT): average 3.5 of 2, in the summary and in the CSV."""
    day = a_day_of_its_own()
    t = lambda s: day + timedelta(hours=10, seconds=s)  # noqa: E731
    ids = [uuid.uuid4(), uuid.uuid4()]
    for dialog_id, score in zip(ids, (5, 2), strict=True):
        await analytics.send(DIALOGS, factories.dialog_opened(dialog_id), t(0))
        await analytics.send(DIALOGS, factories.message_appended(dialog_id, "hi"), t(1))
        await analytics.send(DIALOGS, factories.dialog_assigned(dialog_id, "bob"), t(2))
        await analytics.send(DIALOGS, _reply(dialog_id, "bob"), t(3))
        await analytics.send(DIALOGS, factories.dialog_closed(dialog_id, "bob"), t(4))
        by_operator = DialogRated(
            dialog_id=dialog_id, score=4, scale=5, by="operator", actor_id="bob"
        )
        await analytics.send(DIALOGS, by_operator, t(5))
        rated = DialogRated(
            dialog_id=dialog_id, score=score, scale=5, by="customer", operator_id="bob"
        )
        last = await analytics.send(DIALOGS, rated, t(6))
        await wait_handled(analytics.runtime.engine, last.event_id)
    path = "/api/v1/reports/summary"
    rows = by_key(
        await analytics.json(path + window(day, group_by="operator"), "sue", "supervisor")
    )
    assert (rows["bob"]["csat_average"], rows["bob"]["csat_count"]) == (3.5, 2)
    lines_ = by_key(await analytics.json(path + window(day, group_by="line"), "sue", "supervisor"))
    assert (lines_["demo"]["csat_average"], lines_["demo"]["csat_count"]) == (3.5, 2)
    rows_csv = await analytics.csv("/api/v1/reports/dialogs.csv" + window(day), "sue", "supervisor")
    assert {row["dialog_id"]: row["csat_score"] for row in rows_csv} == {
        str(ids[0]): "5",
        str(ids[1]): "2",
    }
