"""The sandbox provider: Telegram's sendMessage shape, the record of what it got, and faults."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from openlines.kit.embedded import reserve_port
from openlines.stack.sandbox import SandboxSettings, create_sandbox_app

pytestmark = pytest.mark.infra  # runs servers or processes of its own

TOKEN = "123456:demo-bot-token"
SEND = f"/sandbox/tg-demo/bot{TOKEN}/sendMessage"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = create_sandbox_app(SandboxSettings(log_json=False), tokens={"tg-demo": TOKEN})
    async with TestClient(TestServer(app)) as c:
        yield c


async def _send(client: TestClient[Any, Any], path: str = SEND, **body: Any) -> tuple[int, Any]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json()


async def _sent(client: TestClient[Any, Any], channel: str = "tg-demo") -> dict[str, Any]:
    resp = await client.get(f"/sandbox/{channel}/sent")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_send_message_answers_like_telegram_and_is_recorded(
    client: TestClient[Any, Any],
) -> None:
    status, first = await _send(client, chat_id=42, text="hello")
    assert status == 200
    assert first["ok"] is True
    assert first["result"]["chat"]["id"] == 42
    assert first["result"]["text"] == "hello"
    assert isinstance(first["result"]["date"], int)
    status, second = await _send(client, chat_id="42", text="again", reply_to_message_id=7)
    assert status == 200
    assert second["result"]["message_id"] > first["result"]["message_id"]
    assert second["result"]["reply_to_message"]["message_id"] == 7
    # Telegram's newer reply_parameters form, and form-encoded bodies, work too.
    status, _ = await _send(client, chat_id=43, text="form", reply_parameters={"message_id": 8})
    assert status == 200
    resp = await client.post(SEND, data={"chat_id": "44", "text": "as form"})
    assert resp.status == 200

    sent = (await _sent(client))["sent"]
    assert [(m["chat_id"], m["text"], m["reply_to_message_id"]) for m in sent] == [
        (42, "hello", None),
        (42, "again", 7),
        (43, "form", 8),
        (44, "as form", None),
    ]
    ids = [m["message_id"] for m in sent]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert ids[:2] == [first["result"]["message_id"], second["result"]["message_id"]]
    assert all(isinstance(m["at"], float) for m in sent)
    # Channels are separate mailboxes.
    assert (await _sent(client, "other"))["sent"] == []


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"chat_id": 42}, "Bad Request: message text is empty"),
        ({"chat_id": 42, "text": "   "}, "Bad Request: message text is empty"),
        ({"chat_id": 42, "text": 5}, "Bad Request: message text is empty"),
        ({"text": "hi"}, "Bad Request: chat_id is empty"),
        ({"chat_id": "not-a-chat", "text": "hi"}, "Bad Request: chat_id is empty"),
        ({"chat_id": 42, "text": "x" * 4097}, "Bad Request: message is too long"),
    ],
)
async def test_invalid_send_message_is_a_telegram_400_and_not_recorded(
    client: TestClient[Any, Any], body: dict[str, Any], description: str
) -> None:
    status, answer = await _send(client, **body)
    assert (status, answer) == (400, {"ok": False, "error_code": 400, "description": description})
    assert (await _sent(client))["sent"] == []


@pytest.mark.parametrize(
    "reply_to",
    [
        "1e999",  # JSON's way to overflow a float to infinity: was a 500 (OverflowError)
        "-1e999",
        "NaN",
        "1.5",
        "0",
        "-7",
        "true",
        '"seven"',
        '"1e3"',
        "4503599627370496",  # 2**52: past Telegram's 52-bit Integer
        "[7]",
        '{"message_id": 7}',
    ],
)
async def test_a_reply_to_that_is_no_message_id_is_a_telegram_400(
    client: TestClient[Any, Any], reply_to: str
) -> None:
    for field in ("reply_to_message_id", "reply_parameters"):
        value = reply_to if field == "reply_to_message_id" else f'{{"message_id": {reply_to}}}'
        raw = f'{{"chat_id": 42, "text": "hi", "{field}": {value}}}'
        resp = await client.post(SEND, data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 400, (field, reply_to)
        assert await resp.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: invalid reply_to_message_id",
        }
    # Query strings and form data carry it as a string: also a 400, never a 500.
    for text_value in ("1e999", "inf", "1" + "0" * 5000, "٣"):
        resp = await client.post(
            SEND, data={"chat_id": "42", "text": "hi", "reply_to_message_id": text_value}
        )
        assert resp.status == 400, text_value
        resp = await client.post(
            f"{SEND}?reply_to_message_id={text_value}", json={"chat_id": 42, "text": "hi"}
        )
        assert resp.status == 400, text_value
    assert (await _sent(client))["sent"] == []


async def test_a_reply_to_as_a_decimal_string_is_an_integer(client: TestClient[Any, Any]) -> None:
    resp = await client.post(SEND, data={"chat_id": "42", "text": "hi", "reply_to_message_id": "9"})
    assert resp.status == 200
    assert [m["reply_to_message_id"] for m in (await _sent(client))["sent"]] == [9]


async def test_wrong_token_and_unknown_method(client: TestClient[Any, Any]) -> None:
    status, answer = await _send(
        client, "/sandbox/tg-demo/bot1:wrong/sendMessage", chat_id=1, text="x"
    )
    assert (status, answer["description"]) == (401, "Unauthorized")
    status, answer = await _send(client, f"/sandbox/tg-demo/bot{TOKEN}/sendTelepathy", chat_id=1)
    assert (status, answer["error_code"]) == (404, 404)
    # A channel the sandbox was not configured with takes any token.
    status, _ = await _send(client, "/sandbox/made-up/bot9:x/sendMessage", chat_id=1, text="x")
    assert status == 200
    assert (await _sent(client))["sent"] == []


async def test_faults_fail_the_next_calls_then_clear(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/sandbox/tg-demo/faults", json={"status": 429, "times": 2, "retry_after": 3}
    )
    assert resp.status == 200
    assert (await resp.json())["faults_pending"] == 2
    resp = await client.post("/sandbox/tg-demo/faults", json={"status": 502})
    assert (await resp.json())["faults_pending"] == 3

    for _ in range(2):
        assert await _send(client, chat_id=42, text="hi") == (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            },
        )
    status, answer = await _send(client, chat_id=42, text="hi")
    assert (status, answer["error_code"], answer["description"]) == (502, 502, "Bad Gateway")
    status, answer = await _send(client, chat_id=42, text="hi")
    assert status == 200

    record = await _sent(client)
    assert [m["text"] for m in record["sent"]] == ["hi"]  # the failed calls sent nothing
    assert (record["rejected"], record["faults_pending"]) == (3, 0)

    await client.post("/sandbox/tg-demo/faults", json={"status": 503, "times": 5})
    resp = await client.delete("/sandbox/tg-demo/faults")
    assert (await resp.json())["faults_pending"] == 0
    assert (await _send(client, chat_id=42, text="after clear"))[0] == 200

    resp = await client.delete("/sandbox/tg-demo/sent")
    assert resp.status == 200
    assert (await _sent(client))["sent"] == []


async def test_edit_and_delete_apply_to_sent_messages_and_are_recorded(
    client: TestClient[Any, Any],
) -> None:
    base = f"/sandbox/tg-demo/bot{TOKEN}"
    _, sent = await _send(client, chat_id=42, text="helo")
    message_id = sent["result"]["message_id"]

    status, answer = await _send(
        client, f"{base}/editMessageText", chat_id=42, message_id=message_id, text="hello"
    )
    assert status == 200 and answer["result"]["text"] == "hello"
    # The same text again is Telegram's "not modified"; an unknown message is "not found".
    status, answer = await _send(
        client, f"{base}/editMessageText", chat_id=42, message_id=message_id, text="hello"
    )
    assert status == 400 and answer["description"].startswith(
        "Bad Request: message is not modified"
    )
    status, answer = await _send(
        client, f"{base}/editMessageText", chat_id=42, message_id=999, text="x"
    )
    assert (status, answer["description"]) == (400, "Bad Request: message to edit not found")

    status, answer = await _send(client, f"{base}/deleteMessage", chat_id=42, message_id=message_id)
    assert (status, answer) == (200, {"ok": True, "result": True})
    status, answer = await _send(client, f"{base}/deleteMessage", chat_id=42, message_id=message_id)
    assert (status, answer["description"]) == (400, "Bad Request: message to delete not found")

    record = await _sent(client)
    assert [(m["message_id"], m["chat_id"], m["text"]) for m in record["edited"]] == [
        (message_id, 42, "hello")
    ]
    assert [(m["message_id"], m["chat_id"]) for m in record["deleted"]] == [(message_id, 42)]

    # A fault may carry Telegram's own words for a refusal.
    _, again = await _send(client, chat_id=42, text="old")
    why = "Bad Request: message can't be deleted for everyone"
    await client.post("/sandbox/tg-demo/faults", json={"status": 400, "description": why})
    status, answer = await _send(
        client, f"{base}/deleteMessage", chat_id=42, message_id=again["result"]["message_id"]
    )
    assert (status, answer["description"]) == (400, why)
    assert len((await _sent(client))["deleted"]) == 1


async def test_a_slow_success_is_recorded_after_its_delay(client: TestClient[Any, Any]) -> None:
    await client.post("/sandbox/tg-demo/faults", json={"status": 200, "delay_seconds": 0.2})
    sending = asyncio.create_task(_send(client, chat_id=42, text="slow"))
    await asyncio.sleep(0.05)
    assert (await _sent(client))["sent"] == []  # still "in flight" at the provider
    assert (await sending)[0] == 200
    assert [m["text"] for m in (await _sent(client))["sent"]] == ["slow"]


async def test_a_disconnect_fault_drops_the_answer_after_taking_the_message(
    client: TestClient[Any, Any],
) -> None:
    await client.post("/sandbox/tg-demo/faults", json={"status": 200, "disconnect": True})
    await client.post("/sandbox/tg-demo/faults", json={"status": 502, "disconnect": True})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _send(client, chat_id=42, text="taken, answer lost")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _send(client, chat_id=42, text="failed, answer lost")
    record = await _sent(client)
    assert [m["text"] for m in record["sent"]] == ["taken, answer lost"]
    assert (record["rejected"], record["faults_pending"]) == (1, 0)


@pytest.mark.parametrize(
    "body",
    [
        {"status": 418},
        {"status": 429, "times": 0},
        {"status": 500, "retry_after": -1},
        {"times": 1},
        {"status": 500, "surprise": True},
        [1],
    ],
)
async def test_invalid_faults_are_rejected(client: TestClient[Any, Any], body: Any) -> None:
    resp = await client.post("/sandbox/tg-demo/faults", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_fault"
    assert (await _sent(client))["faults_pending"] == 0


async def test_malformed_fault_json_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/sandbox/tg-demo/faults", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_json"


async def test_whatsapp_cloud_api_shape(client: TestClient[Any, Any]) -> None:
    path = "/sandbox/wa-demo/v19.0/1234567890/messages"
    body = {"messaging_product": "whatsapp", "to": "491700000", "type": "text"}
    resp = await client.post(path, json={**body, "text": {"body": "hallo"}})
    assert resp.status == 200
    answer = await resp.json()
    assert answer["contacts"] == [{"input": "491700000", "wa_id": "491700000"}]
    assert answer["messages"][0]["id"].startswith("wamid.")
    resp = await client.post(path, json=body)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == 100
    await client.post("/sandbox/wa-demo/faults", json={"status": 429})
    resp = await client.post(path, json={**body, "text": {"body": "again"}})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == 130429
    assert [m["text"] for m in (await _sent(client, "wa-demo"))["sent"]] == ["hallo"]


DEMO_LINES = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


async def test_sandbox_process_serves_and_stops_on_sigterm() -> None:
    port = reserve_port()
    lines = DEMO_LINES
    env = {
        **os.environ,
        "OPENLINES_HTTP_PORT": str(port),
        "OPENLINES_LINES_FILE": str(lines),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.stack.sandbox_main",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with http.get(base + "/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
            async with http.post(base + SEND, json={"chat_id": 1, "text": "x"}) as resp:
                assert resp.status == 200
            # The token of tg-demo comes from the lines file.
            bad = "/sandbox/tg-demo/bot1:nope/sendMessage"
            async with http.post(base + bad, json={"chat_id": 1, "text": "x"}) as resp:
                assert resp.status == 401
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


KEYBOARD = {
    "inline_keyboard": [
        [{"text": "1", "callback_data": "csat:d:1"}, {"text": "2", "callback_data": "csat:d:2"}]
    ]
}


async def test_an_inline_keyboard_is_recorded_and_a_press_reaches_the_webhook() -> None:
    """The rating request's buttons: kept with the message; a press posts Telegram's
    callback_query update to the channel's webhook with its secret, and the method the
    webhook answers with (answerCallbackQuery) is performed."""
    got: list[tuple[dict[str, Any], str | None]] = []

    async def webhook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        update = await request.json()
        got.append((update, request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        query_id = update["callback_query"]["id"]
        return aiohttp.web.json_response(
            {"ok": True, "method": "answerCallbackQuery", "callback_query_id": query_id}
        )

    receiver = aiohttp.web.Application()
    receiver.router.add_post("/webhooks/telegram/tg-demo", webhook)
    async with TestServer(receiver) as bot:
        settings = SandboxSettings(log_json=False, webhook_base=str(bot.make_url("")))
        app = create_sandbox_app(settings, tokens={"tg-demo": TOKEN}, secrets={"tg-demo": "s3"})
        async with TestClient(TestServer(app)) as client:
            status, sent = await _send(client, chat_id=42, text="Rate us?", reply_markup=KEYBOARD)
            assert status == 200 and sent["result"]["reply_markup"] == KEYBOARD
            await _send(client, chat_id=42, text="a later message without buttons")
            [recorded, _] = (await _sent(client))["sent"]
            assert recorded["reply_markup"] == KEYBOARD

            resp = await client.post("/sandbox/tg-demo/press", json={"chat_id": 42, "text": "2"})
            assert resp.status == 200, await resp.text()
            pressed = await resp.json()
            [(update, secret)] = got
            assert secret == "s3"
            query = update["callback_query"]
            assert query["data"] == "csat:d:2"
            assert query["message"]["message_id"] == sent["result"]["message_id"]
            assert query["message"]["reply_markup"] == KEYBOARD
            assert query["from"]["id"] == 42 and query["message"]["chat"]["id"] == 42
            assert pressed["webhook"]["status"] == 200 and pressed["update"] == update
            assert (await _sent(client))["answered_callbacks"] == [query["id"]]

            for body, code in (
                ({"chat_id": 42, "text": "7"}, "no_such_button"),
                ({"chat_id": 99, "data": "csat:d:1"}, "no_keyboard"),
            ):
                resp = await client.post("/sandbox/tg-demo/press", json=body)
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == code
            resp = await client.post("/sandbox/tg-demo/press", json={"chat_id": 42})
            assert resp.status == 400  # no button named
            assert len(got) == 1


@pytest.mark.parametrize(
    "markup",
    [
        {"inline_keyboard": "no"},
        {"inline_keyboard": [[{"text": "", "callback_data": "x"}]]},
        {"inline_keyboard": [[{"text": "x", "callback_data": "x" * 65}]]},
        "{not json",
    ],
)
async def test_a_malformed_inline_keyboard_is_a_telegram_400(
    client: TestClient[Any, Any], markup: Any
) -> None:
    status, body = await _send(client, chat_id=42, text="x", reply_markup=markup)
    assert status == 400 and body["ok"] is False
    assert (await _sent(client))["sent"] == []
