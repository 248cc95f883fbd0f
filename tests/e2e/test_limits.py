"""Limits across the pipeline: the largest legal Telegram message goes through unchanged from the
webhook to the Kafka record, the dialog timeline and the operator's WebSocket frame; an
over-long name (the reported 600 KB first_name) is cut at the edge and stops nothing."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp

from openlines.events import DIALOGS
from openlines.events.codec import decode
from openlines.kit.settings import KitSettings
from openlines.kit.testing.kafka import read_topic

from .conftest import Stack
from .steps import CHANNEL, SECRET, eventually, json_if_ok, next_ws_event, telegram_update

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

    def has_it(records: list[Any]) -> bool:
        return any(_appended_in(r, dialog_id) for r in records)

    records = await read_topic(bootstrap, DIALOGS, has_it, timeout=30)
    [record] = [r for r in records if _appended_in(r, dialog_id)]
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
    update = telegram_update(big, "Big", "hi")
    update["message"]["from"]["first_name"] = "A" * 600_000  # a 600 KB body, under the limit
    await _webhook(http, base, update)
    await _webhook(http, base, telegram_update(after, "Next Customer", "and me"))

    async def both_opened() -> dict[str, dict[str, Any]] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?tab=all&limit=100", sue)
        found = {
            d["customer"]["external_id"]: d
            for d in (body or {}).get("items", [])
            if d["customer"]["external_id"] in (str(big), str(after))
        }
        return found if len(found) == 2 else None

    dialogs = await eventually(both_opened, "both dialogs opened", timeout=60)
    assert dialogs[str(big)]["customer"]["name"] == "A" * NAME_LIMIT
    assert dialogs[str(after)]["customer"]["name"] == "Next Customer"
