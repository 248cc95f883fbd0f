"""Telegram webhooks through the real ingest runtime onto the real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from openlines.events import decode
from openlines.events.catalog import (
    AttachmentKind,
    ButtonPressed,
    InboundMessageEdited,
    MessageReceived,
)

from .ingest_helpers import (
    Ingest,
    Record,
    has_event,
    header,
    next_id,
    read_until,
    tg_message,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _records_of_chat(ingest: Ingest, chat_id: int, last_event_id: str) -> list[Record]:
    """Records of one conversation, read up to `last_event_id` (same key: same partition,
    so anything published before it is already in the list)."""
    records = await read_until(
        ingest.settings.kafka_bootstrap, ingest.inbound_topic, has_event(last_event_id)
    )
    return [r for r in records if r.key == f"tg-test:{chat_id}".encode()]


async def test_text_message_is_published_as_message_received(ingest: Ingest) -> None:
    chat = next_id()
    update = tg_message(chat, reply_to_message={"message_id": 7, "date": 1, "chat": {"id": chat}})
    status, body = await ingest.post(
        update, headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    )
    assert status == 200, body
    assert body["ok"] is True

    [record] = await _records_of_chat(ingest, chat, body["event_id"])
    assert record.key == f"tg-test:{chat}".encode()
    assert header(record, "type") == "MessageReceived"
    assert header(record, "schema_version") == "1"
    assert header(record, "event_id") == body["event_id"]
    traceparent = header(record, "traceparent")
    assert traceparent is not None and TRACE_ID in traceparent  # the provider's trace goes on

    env = decode(record.value, record.headers, topic="openlines.inbound.v1")
    assert str(env.event_id) == body["event_id"]
    assert env.stream_id == f"tg-test:{chat}"
    assert env.stream_version == 0
    assert env.producer == "ingest"
    msg = env.payload
    assert isinstance(msg, MessageReceived)
    message_id = update["message"]["message_id"]
    assert (msg.channel_id, msg.channel_type, msg.line_id) == ("tg-test", "telegram", "test-line")
    assert msg.conversation_key == f"tg-test:{chat}"
    assert (msg.external_chat_id, msg.external_user_id) == (str(chat), str(chat))
    assert msg.external_message_id == str(message_id)
    assert msg.customer.name == "Ann Customer"
    assert msg.customer.username == "ann_c"
    assert msg.customer.external_id == str(chat)
    assert msg.text == "hello"
    assert msg.attachments == ()
    assert msg.reply_to_external_id == "7"
    assert msg.sent_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert env.occurred_at == msg.sent_at


async def test_a_retried_update_gets_the_same_event_id(ingest: Ingest) -> None:
    chat = next_id()
    update = tg_message(chat)
    first = await ingest.post(update)
    second = await ingest.post(update)
    assert first[0] == second[0] == 200
    assert first[1]["event_id"] == second[1]["event_id"]

    records = await read_until(
        ingest.settings.kafka_bootstrap,
        ingest.inbound_topic,
        lambda rs: sum(header(r, "event_id") == first[1]["event_id"] for r in rs) >= 2,
    )
    mine = [r for r in records if r.key == f"tg-test:{chat}".encode()]
    # Both deliveries reach the topic (ingest is stateless); dialogs dedupes on the event id.
    assert [header(r, "event_id") for r in mine] == [first[1]["event_id"]] * 2


async def test_photo_and_document_become_attachments(ingest: Ingest) -> None:
    chat = next_id()
    photo = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 853, "file_size": 9000},
        {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 213, "file_size": 3000},
    ]
    photo_update = tg_message(chat, photo=photo, caption="look", text=None)
    del photo_update["message"]["text"]
    status, photo_body = await ingest.post(photo_update)
    assert status == 200, photo_body
    doc_update = tg_message(
        chat,
        document={
            "file_id": "doc-1",
            "file_unique_id": "d",
            "file_name": "invoice.pdf",
            "mime_type": "application/pdf",
            "file_size": 12345,
        },
    )
    del doc_update["message"]["text"]
    status, doc_body = await ingest.post(doc_update)
    assert status == 200, doc_body

    records = await _records_of_chat(ingest, chat, doc_body["event_id"])
    photo_msg, doc_msg = (decode(r.value, r.headers, topic="openlines.inbound.v1") for r in records)
    assert photo_msg.payload.text == "look"  # the caption is the text
    [picture] = photo_msg.payload.attachments
    assert (picture.kind, picture.file_id) == (AttachmentKind.PHOTO, "big")
    assert (picture.width, picture.height, picture.size_bytes) == (1280, 853, 9000)
    assert doc_msg.payload.text is None
    [document] = doc_msg.payload.attachments
    assert document.kind == AttachmentKind.DOCUMENT
    assert (document.file_id, document.file_name) == ("doc-1", "invoice.pdf")
    assert (document.mime_type, document.size_bytes) == ("application/pdf", 12345)


async def test_edited_message_becomes_inbound_message_edited(ingest: Ingest) -> None:
    chat = next_id()
    original = tg_message(chat)
    message_id = original["message"]["message_id"]
    status, sent = await ingest.post(original)
    assert status == 200
    edit = {
        "update_id": next_id(),
        "edited_message": {
            **original["message"],
            "text": "hello, fixed",
            "edit_date": 1_700_000_100,
        },
    }
    status, edited = await ingest.post(edit)
    assert status == 200, edited
    assert edited["event_id"] != sent["event_id"]

    records = await _records_of_chat(ingest, chat, edited["event_id"])
    assert [header(r, "type") for r in records] == ["MessageReceived", "MessageEdited"]
    env = decode(records[1].value, records[1].headers, topic="openlines.inbound.v1")
    assert isinstance(env.payload, InboundMessageEdited)
    assert env.payload.external_message_id == str(message_id)
    assert env.payload.text == "hello, fixed"
    assert env.payload.edited_at == datetime.fromtimestamp(1_700_000_100, UTC)
    assert env.payload.conversation_key == f"tg-test:{chat}"


async def test_updates_without_a_customer_message_are_acknowledged_and_ignored(
    ingest: Ingest,
) -> None:
    chat = next_id()
    member = {
        "update_id": next_id(),
        "my_chat_member": {"chat": {"id": chat, "type": "private"}, "date": 1},
    }
    callback = {"update_id": next_id(), "callback_query": {"id": "1", "data": "x"}}
    joined = tg_message(chat, new_chat_members=[{"id": 5, "first_name": "Z"}])
    del joined["message"]["text"]
    assert await ingest.post(member) == (200, {"ok": True, "ignored": "my_chat_member"})
    assert await ingest.post(callback) == (200, {"ok": True, "ignored": "callback_query"})
    assert await ingest.post(joined) == (200, {"ok": True, "ignored": "message_without_content"})

    # Nothing of this conversation was published before the next real message.
    status, body = await ingest.post(tg_message(chat))
    assert status == 200
    records = await _records_of_chat(ingest, chat, body["event_id"])
    assert [header(r, "event_id") for r in records] == [body["event_id"]]


async def test_a_button_press_is_published_and_answered_in_the_webhooks_answer(
    ingest: Ingest,
) -> None:
    chat = next_id()
    message = tg_message(chat)["message"]
    press = {
        "update_id": next_id(),
        "callback_query": {
            "id": f"cb-{chat}",
            "from": message["from"],
            "message": {**message, "reply_markup": {"inline_keyboard": []}},
            "chat_instance": "1",
            "data": "csat:d:4",
        },
    }
    status, body = await ingest.post(press)
    assert status == 200, body
    # Telegram performs the method a webhook answers with: the button stops spinning.
    assert (body["method"], body["callback_query_id"]) == ("answerCallbackQuery", f"cb-{chat}")
    [record] = await _records_of_chat(ingest, chat, body["event_id"])
    assert header(record, "type") == "ButtonPressed"
    env = decode(record.value, record.headers, topic="openlines.inbound.v1")
    assert isinstance(env.payload, ButtonPressed)
    assert (env.payload.data, env.payload.conversation_key) == ("csat:d:4", f"tg-test:{chat}")


async def test_bad_input_gets_its_4xx_and_publishes_nothing(ingest: Ingest) -> None:
    chat = next_id()
    update = tg_message(chat)
    cases = [
        (await ingest.post(update, secret="wrong"), 401, "invalid_secret"),
        (await ingest.post(update, secret=None), 401, "invalid_secret"),
        # A channel without a configured secret accepts nothing.
        (
            await ingest.post(update, path="/webhooks/telegram/tg-nosecret", secret=""),
            401,
            "invalid_secret",
        ),
        (await ingest.post(update, path="/webhooks/telegram/nope"), 404, "unknown_channel"),
        # wa-test exists, but it is not a Telegram channel.
        (await ingest.post(update, path="/webhooks/telegram/wa-test"), 404, "unknown_channel"),
        (await ingest.post(update, path="/webhooks/fax/tg-test"), 404, "unknown_channel_type"),
        (await ingest.post(b'{"update_id": 1, "message": {'), 400, "malformed_json"),
        (await ingest.post(b"\xff\xfe"), 400, "malformed_json"),
        (await ingest.post([1, 2, 3]), 400, "invalid_update"),
        (await ingest.post({"hello": "world"}), 400, "invalid_update"),
        (
            await ingest.post({"update_id": 1, "message": {"message_id": "x", "chat": {}}}),
            400,
            "invalid_update",
        ),
        (await ingest.post(b"x" * (ingest.settings.http_body_limit + 1)), 413, "payload_too_large"),
        # A date no clock can show (year 33658) is not Telegram's.
        (
            await ingest.post(tg_message(chat, date=10**12)),
            400,
            "invalid_update",
        ),
    ]
    for (status, body), want_status, want_code in cases:
        assert (status, body["error"]["code"]) == (want_status, want_code), body
        assert body["error"]["message"]

    # The service still answers, and none of the above reached the topic: the next good
    # message of the same conversation is the first record of its key.
    async with ingest.http.get(ingest.url + "/healthz") as resp:
        assert resp.status == 200
    status, body = await ingest.post(update)
    assert status == 200
    records = await _records_of_chat(ingest, chat, body["event_id"])
    assert [header(r, "event_id") for r in records] == [body["event_id"]]

    async with ingest.http.get(ingest.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'openlines_ingest_webhooks_total{channel="tg-test",outcome="invalid_secret"} 2.0' in (
        metrics
    )
    assert 'openlines_ingest_webhooks_total{channel="unknown",outcome="unknown_channel"}' in (
        metrics
    )


async def test_nul_in_a_customer_message_is_dropped_not_refused(ingest: Ingest) -> None:
    # Postgres text cannot store U+0000; refusing the update would make Telegram retry it
    # forever, so the character goes and the message is kept.
    chat = next_id()
    body = json.dumps(tg_message(chat, text="he\u0000llo")).encode()
    assert b"\\u0000" in body
    status, answer = await ingest.post(body, headers={"Content-Type": "application/json"})
    assert status == 200, answer
    [record] = await _records_of_chat(ingest, chat, answer["event_id"])
    env = decode(record.value, record.headers, topic="openlines.inbound.v1")
    assert isinstance(env.payload, MessageReceived) and env.payload.text == "hello"


async def test_chunked_oversize_body_is_413(ingest: Ingest) -> None:
    limit = ingest.settings.http_body_limit

    async def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    async with ingest.http.post(
        ingest.url + "/webhooks/telegram/tg-test",
        data=chunks(),
        headers={"X-Telegram-Bot-Api-Secret-Token": "tg-test-secret"},
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_ready_when_the_broker_answers(ingest: Ingest) -> None:
    async with ingest.http.get(ingest.url + "/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"] == {"broker": True}
