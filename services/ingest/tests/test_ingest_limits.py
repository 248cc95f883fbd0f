"""Limits at the edge: Telegram fields are capped to Telegram's limits, and the body limit
agrees with the Kafka record limit (an oversized webhook is 413, never a retryable 503)."""

from __future__ import annotations

import json
from typing import Any

from openlines.events.catalog import MessageReceived
from openlines.events.codec import decode
from openlines.ingest.telegram import NAME_LIMIT, TEXT_LIMIT
from openlines.kit.settings import RECORD_ENVELOPE_ROOM

from .ingest_helpers import Ingest, has_event, next_id, read_until, tg_message

HEADERS = {"Content-Type": "application/json"}


def _body_of_size(size: int, chat: int, **fields: Any) -> bytes:
    """A Telegram update of exactly `size` bytes, padded with a long text."""
    update = tg_message(chat, text="", **fields)
    base = len(json.dumps(update).encode())
    update["message"]["text"] = "x" * (size - base)
    body = json.dumps(update).encode()
    assert len(body) == size
    return body


async def _payload(ingest: Ingest, event_id: str) -> MessageReceived:
    records = await read_until(
        ingest.settings.kafka_bootstrap, ingest.inbound_topic, has_event(event_id)
    )
    [record] = [r for r in records if dict(r.headers)["event_id"].decode() == event_id]
    env = decode(record.value, record.headers, topic="openlines.inbound.v1")
    assert isinstance(env.payload, MessageReceived)
    return env.payload


async def test_telegram_names_and_text_are_cut_to_telegram_limits(ingest: Ingest) -> None:
    # The reported defect: a 600 KB first_name. Telegram's own limits are 64 and 4096.
    chat = next_id()
    sender = {
        "id": chat,
        "first_name": "A" * 600_000,
        "last_name": "B" * 100,
        "username": "u" * 100,
        "language_code": "e" * 100,
    }
    update = tg_message(chat, text="я" * 5000)
    update["message"]["from"] = sender
    body = json.dumps(update, ensure_ascii=False).encode()
    status, answer = await ingest.post(body, headers=HEADERS)
    assert status == 200, answer
    payload = await _payload(ingest, answer["event_id"])
    assert payload.customer.name == "A" * NAME_LIMIT + " " + "B" * NAME_LIMIT
    assert payload.customer.username == "u" * NAME_LIMIT
    assert payload.text == "я" * TEXT_LIMIT


async def test_the_largest_legal_message_passes_unchanged(ingest: Ingest) -> None:
    chat = next_id()
    text = "😀ж" * (TEXT_LIMIT // 2)  # multi-byte: 4 and 2 bytes a character
    sender = {"id": chat, "first_name": "名" * NAME_LIMIT, "last_name": "Ω" * NAME_LIMIT}
    update = tg_message(chat, text=text)
    update["message"]["from"] = sender
    status, answer = await ingest.post(update)
    assert status == 200, answer
    payload = await _payload(ingest, answer["event_id"])
    assert payload.text == text
    assert payload.customer.name == "名" * NAME_LIMIT + " " + "Ω" * NAME_LIMIT


async def test_body_limit_follows_the_record_limit_413_at_the_boundary(ingest: Ingest) -> None:
    # The reported body: 1,048,084 bytes answered 503 broker_unavailable (retried forever).
    status, answer = await ingest.post(_body_of_size(1_048_084, next_id()), headers=HEADERS)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large"), answer

    limit = ingest.settings.http_body_limit
    assert limit == ingest.settings.kafka_max_record_bytes - RECORD_ENVELOPE_ROOM

    status, answer = await ingest.post(_body_of_size(limit + 1, next_id()), headers=HEADERS)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large"), answer

    # Exactly at the limit: accepted, and its text cut to Telegram's 4096.
    status, answer = await ingest.post(_body_of_size(limit, next_id()), headers=HEADERS)
    assert status == 200, answer
    assert (await _payload(ingest, answer["event_id"])).text == "x" * TEXT_LIMIT
