"""Reports across the real processes, through the gateway: a customer writes, an operator
answers and closes; the summary and the CSV export show it, and an operator sees only their
own figures.

On a line of its own (`reports`, operators rp1 and rp2; conftest), so that the counts are this
test's whatever else runs on the stack.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from .conftest import REPORTS_CHANNEL, REPORTS_SECRET, Stack
from .steps import (
    customer_says,
    dialog_of_chat,
    eventually,
    get_json,
    json_if_ok,
    post_json,
    set_presence,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def _csv(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> list[dict]:
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(await resp.text())))


async def test_a_dialog_shows_in_the_summary_and_the_csv(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base = stack.url
    rp1, rp2, sue = stack.auth("rp1"), stack.auth("rp2"), stack.auth("sue", "supervisor")
    window = {
        "from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    chat = random.randint(10**6, 10**7)

    # rp1 is the line's only operator online: routing gives the dialog to rp1.
    for who, presence in (("rp1", "online"), ("rp2", "offline")):
        await set_presence(http, base, stack.auth(who), who, presence)
    await customer_says(
        http,
        base,
        chat,
        "Rita Reports",
        "How long does delivery take?",
        channel=REPORTS_CHANNEL,
        secret=REPORTS_SECRET,
    )
    assigned = await dialog_of_chat(
        http, base, rp1, chat, query="tab=active", what="the dialog assigned to rp1"
    )
    dialog_id = assigned["id"]
    status, reply = await post_json(
        http,
        f"{base}/api/v1/dialogs/{dialog_id}/messages",
        rp1,
        {"text": "Two days.", "client_message_id": f"r-{chat}"},
    )
    assert status == 202, reply
    status, closed = await post_json(http, f"{base}/api/v1/dialogs/{dialog_id}/close", rp1)
    assert status == 200, closed

    def summary_url(group_by: str) -> str:
        return f"{base}/api/v1/reports/summary?{urlencode({**window, 'group_by': group_by})}"

    async def rp1_closed_it() -> dict[str, Any] | None:
        body = await json_if_ok(http, summary_url("operator"), rp1)
        rows = (body or {}).get("rows", [])
        return rows[0] if rows and rows[0]["dialogs_closed"] == 1 else None

    # The operator sees their own row, and only it.
    mine = await eventually(rp1_closed_it, "rp1's closed dialog in the summary")
    assert mine["key"] == "rp1"
    assert mine["first_response_p50_seconds"] is not None
    assert mine["resolution_p50_seconds"] >= mine["first_response_p50_seconds"]
    status, theirs = await get_json(http, summary_url("operator"), rp2)
    assert status == 200 and theirs["rows"] == [], theirs

    # The supervisor sees the line, opened and closed.
    status, by_line = await get_json(http, summary_url("line"), sue)
    assert status == 200, by_line
    line = next(row for row in by_line["rows"] if row["key"] == "reports")
    assert (line["dialogs_opened"], line["dialogs_closed"]) == (1, 1)
    assert line["sla_compliance_percent"] == 100.0

    # One CSV row per dialog, with its metrics; rp2's export does not have it.
    csv_url = f"{base}/api/v1/reports/dialogs.csv?{urlencode(window)}"
    rows = [row for row in await _csv(http, csv_url, sue) if row["dialog_id"] == dialog_id]
    assert len(rows) == 1
    assert (
        rows[0]
        | {
            "line_id": "reports",
            "channel_id": REPORTS_CHANNEL,
            "status": "closed",
            "operator_id": "rp1",
            "first_response_by": "rp1",
            "messages_in": "1",
            "messages_out": "1",
            "transfers": "0",
        }
        == rows[0]
    )
    assert [row["dialog_id"] for row in await _csv(http, csv_url, rp1)] == [dialog_id]
    assert await _csv(http, csv_url, rp2) == []

    # Unknown parameters are refused, through the gateway as anywhere.
    status, error = await get_json(http, f"{base}/api/v1/reports/summary?week=1", sue)
    assert status == 400 and error["error"]["code"] == "invalid_query"
