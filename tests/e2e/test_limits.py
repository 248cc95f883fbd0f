"""Limits across the pipeline: the largest legal Telegram message goes through unchanged from the
webhook to the Kafka record, the dialog timeline and the operator's WebSocket frame; an
over-long name (the reported 600 KB first_name) is cut at the edge and stops nothing."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest

from openlines.events import DIALOGS
from openlines.events.codec import decode
from openlines.kit.settings import KitSettings
from openlines.kit.testing.kafka import read_topic

from .conftest import Stack
from .steps import CHANNEL, SECRET, eventually, json_if_ok, next_ws_event, telegram_update

pytestmark = pytest.mark.infra  # runs servers or processes of its own

NAME_LIMIT, TEXT_LIMIT = 64, 4096  # Telegram's


async def _webhook(http: aiohttp.ClientSession, base: str, update: dict[str, Any]) -> None:
    body = json.dumps(update, ensure_ascii=False).encode()
    async with http.post(
        f"{base}/webhooks/telegram/{CHANNEL}",
        data=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    ) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer


async def test_largest_legal_message_reaches_timeline_and_stream_unchanged(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, sue = stack.url, stack.auth("sue", "supervisor")
    chat = random.randint(10**7, 10**8)
    first, last = "名" * NAME_LIMIT, "Ω" * NAME_LIMIT
    text = "😀ж" * (TEXT_LIMIT // 2)  # 4096 characters of 4 and 2 bytes
    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token('sue', 'supervisor')}")
    try:
        await next_ws_event(ws, lambda e: e["type"] == "hello")
        await _webhook(http, base, telegram_update(chat, f"{first} {last}", text))

        def appended(e: dict[str, Any]) -> bool:
            payload = e.get("event", {}).get("payload", {})
            return e["type"] == "MessageAppended" and payload.get("conversation_key") == (
                f"{CHANNEL}:{chat}"
            )

        frame = await next_ws_event(ws, appended)
    finally:
        await ws.close()
    assert frame["event"]["payload"]["text"] == text
    dialog_id = frame["event"]["payload"]["dialog_id"]

    async def timeline() -> list[dict[str, Any]] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}/timeline", sue)
        items = [m for m in (body or {}).get("items", []) if m["direction"] == "in"]
        return items or None

    [message] = await eventually(timeline, "the message in the timeline")
    assert message["text"] == text
    body = await json_if_ok(http, f"{base}/api/v1/dialogs/{dialog_id}", sue)
    assert body["customer"]["name"] == f"{first} {last}"

    # The dialogs record itself: whole, and within the record limit.
    bootstrap = str(stack.state["kafka"]["bootstrap"])  # type: ignore[index]

    def customers_message(records: list[Any]) -> list[Any]:
        # The dialog's system lines (assigned, linked to CRM) are MessageAppended records too.
        return [
            r
            for r in records
            if _appended_in(r, dialog_id)
            and decode(r.value, r.headers, topic=DIALOGS).payload.direction == "in"
        ]

    records = await read_topic(
        bootstrap, DIALOGS, lambda rs: bool(customers_message(rs)), timeout=30
    )
    [record] = customers_message(records)
    assert decode(record.value, record.headers, topic=DIALOGS).payload.text == text
    assert len(record.value) < KitSettings().kafka_max_record_bytes


def _appended_in(record: Any, dialog_id: str) -> bool:
    headers = dict(record.headers)
    return headers.get("type") == b"MessageAppended" and dialog_id.encode() in record.value


async def test_a_600kb_name_is_cut_and_dialog_traffic_keeps_flowing(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """The reported defect: DialogOpened with a 600 KB name twice (customer and title) was
    over the producer's 1 MiB; the relay retried it forever and no dialogs event followed."""
    base, sue = stack.url, stack.auth("sue", "supervisor")
    big, after = random.randint(10**8, 10**9), random.randint(10**8, 10**9)
    ws = await http.ws_connect(f"{base}/api/v1/stream?token={stack.token('sue', 'supervisor')}")
    try:
        await next_ws_event(ws, lambda e: e["type"] == "hello")
        update = telegram_update(big, "Big", "hi")
        update["message"]["from"]["first_name"] = "A" * 600_000  # a 600 KB body, under the limit
        await _webhook(http, base, update)
        await _webhook(http, base, telegram_update(after, "Next Customer", "and me"))

        # Both dialogs reach the operators' stream, which is fed from the dialogs topic: the
        # relay published them (the old relay stalled on the first, and the second never came).
        opened: dict[str, dict[str, Any]] = {}

        def opened_one(e: dict[str, Any]) -> bool:
            payload = e.get("event", {}).get("payload", {})
            key = payload.get("conversation_key", "")
            if e["type"] == "DialogOpened" and key in (f"{CHANNEL}:{big}", f"{CHANNEL}:{after}"):
                opened[key] = payload
            return len(opened) == 2

        await next_ws_event(ws, opened_one, timeout=60)
    finally:
        await ws.close()
    assert opened[f"{CHANNEL}:{big}"]["customer"]["name"] == "A" * NAME_LIMIT
    assert opened[f"{CHANNEL}:{after}"]["customer"]["name"] == "Next Customer"
    body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all&limit=100", sue)
    names = {d["customer"]["external_id"]: d["customer"]["name"] for d in body["items"]}
    assert names[str(big)] == "A" * NAME_LIMIT
