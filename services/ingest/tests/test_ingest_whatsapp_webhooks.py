"""WhatsApp Cloud API webhooks through the real ingest runtime onto the real broker."""

from __future__ import annotations

import json
from typing import Any

from openlines.events import decode
from openlines.events.catalog import DeliveryReceiptReceived, DeliveryStatus, MessageReceived
from openlines.ingest.whatsapp import signature

from .ingest_helpers import (
    WA_PHONE,
    WA_SECRET,
    WA_VERIFY,
    Ingest,
    has_event,
    next_id,
    read_until,
)

PATH = "/webhooks/whatsapp/wa-test"


def _notification(*values: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "waba", "changes": [{"field": "messages", "value": value}]} for value in values
        ],
    }


def _value(**fields: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": WA_PHONE},
        **fields,
    }


def _text(wa_id: str, wamid: str, text: str) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": "1700000000",
        "type": "text",
        "text": {"body": text},
    }


async def _post(
    ingest: Ingest, body: bytes, *, secret: str = WA_SECRET, path: str = PATH
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(secret, body)}
    async with ingest.http.post(ingest.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_several_entries_in_one_body_all_become_events(ingest: Ingest) -> None:
    wa_id, other = str(next_id()), str(next_id())
    status_entry = {
        "id": f"wamid.out.{wa_id}",
        "status": "delivered",
        "timestamp": "1700000100",
        "recipient_id": wa_id,
    }
    body = json.dumps(
        _notification(
            _value(
                contacts=[{"profile": {"name": "Kerry"}, "wa_id": wa_id}],
                messages=[
                    _text(wa_id, f"wamid.{wa_id}.1", "first"),
                    _text(wa_id, f"wamid.{wa_id}.2", "second"),
                ],
            ),
            _value(messages=[_text(other, f"wamid.{other}.1", "other")], statuses=[status_entry]),
        )
    ).encode()
    status, answer = await _post(ingest, body)
    assert status == 200, answer
    assert answer["ok"] is True and len(answer["event_ids"]) == 4

    records = await read_until(
        ingest.settings.kafka_bootstrap,
        ingest.inbound_topic,
        lambda rs: all(has_event(e)(rs) for e in answer["event_ids"]),
    )
    mine = [
        r for r in records if r.key in (f"wa-test:{wa_id}".encode(), f"wa-test:{other}".encode())
    ]
    events = [decode(r.value, r.headers, topic="openlines.inbound.v1").payload for r in mine]
    texts = [
        e.text for e in events if isinstance(e, MessageReceived) and e.external_chat_id == wa_id
    ]
    assert texts == ["first", "second"]  # one conversation keeps the body's order
    (receipt,) = [e for e in events if isinstance(e, DeliveryReceiptReceived)]
    assert receipt.status is DeliveryStatus.DELIVERED
    assert receipt.provider_message_id == f"wamid.out.{wa_id}"
    assert {e.customer.name for e in events if isinstance(e, MessageReceived)} == {
        "Kerry",
        f"+{other}",
    }

    # Meta's retry of the same body: the same event ids (consumers dedupe them).
    status, again = await _post(ingest, body)
    assert status == 200 and again["event_ids"] == answer["event_ids"]


async def test_a_bad_signature_is_401(ingest: Ingest) -> None:
    body = json.dumps(_notification(_value(messages=[_text("1", "wamid.x", "x")]))).encode()
    status, answer = await _post(ingest, body, secret="not-the-app-secret")
    assert (status, answer["error"]["code"]) == (401, "invalid_secret")
    async with ingest.http.post(ingest.url + PATH, data=body) as resp:
        assert resp.status == 401  # no signature at all


async def test_statuses_only_and_sent_only_bodies(ingest: Ingest) -> None:
    sent = {"id": "wamid.s", "status": "sent", "timestamp": "1", "recipient_id": "1"}
    status, answer = await _post(
        ingest, json.dumps(_notification(_value(statuses=[sent]))).encode()
    )
    assert status == 200, answer
    assert answer == {"ok": True, "event_ids": [], "ignored": "status_sent"}


async def test_not_a_notification_is_400_and_an_unknown_channel_404(ingest: Ingest) -> None:
    status, answer = await _post(ingest, b'{"object": "page", "entry": []}')
    assert (status, answer["error"]["code"]) == (400, "invalid_update")
    body = json.dumps(_notification(_value())).encode()
    status, answer = await _post(ingest, body, path="/webhooks/whatsapp/wa-nope")
    assert (status, answer["error"]["code"]) == (404, "unknown_channel")
    status, answer = await _post(ingest, body, path="/webhooks/whatsapp/tg-test")
    assert (status, answer["error"]["code"]) == (404, "unknown_channel")


async def test_oversize_body_is_413(ingest: Ingest) -> None:
    text = "x" * (ingest.settings.http_body_limit + 1)
    body = json.dumps(_notification(_value(messages=[_text("1", "wamid.big", text)]))).encode()
    status, answer = await _post(ingest, body)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")


async def test_verify_handshake_echoes_the_challenge_or_403(ingest: Ingest) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1158201444"}
    async with ingest.http.get(ingest.url + PATH, params=query) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == "1158201444"

    wrong = {**query, "hub.verify_token": "guess"}
    async with ingest.http.get(ingest.url + PATH, params=wrong) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "invalid_verify_token"
    async with ingest.http.get(ingest.url + "/webhooks/whatsapp/wa-nope", params=query) as resp:
        assert resp.status == 404
    async with ingest.http.get(ingest.url + PATH, params={"hub.mode": "subscribe"}) as resp:
        assert resp.status == 400
