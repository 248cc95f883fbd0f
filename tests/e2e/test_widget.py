"""The website widget through the gateway: the signed webhook (web-demo, demo-widget-secret),
the script and demo page, a visitor's session, messages, socket and receipts, token scope,
and the visitor limits (429, 413)."""

from __future__ import annotations

import json
import time
import uuid
from functools import partial
from typing import Any

import aiohttp
import pytest

from openlines.ingest.widget import signed_headers

from .conftest import WIDGET_CHANNEL, WIDGET_OPERATOR, WIDGET_RATE, Stack
from .steps import (
    dialog_of_chat,
    eventually,
    json_if_ok,
    next_ws_event,
    post_json,
    pushed,
    set_presence,
)

pytestmark = pytest.mark.infra  # runs servers or processes of its own

DEMO_CHANNEL, DEMO_SECRET = "web-demo", "demo-widget-secret"


async def visitor_session(http: aiohttp.ClientSession, url: str, channel: str) -> dict[str, Any]:
    async with http.post(f"{url}/widget/{channel}/sessions") as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return dict(body)


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


async def visitor_writes(
    http: aiohttp.ClientSession, url: str, session: dict[str, Any], text: str
) -> str:
    client_id = uuid.uuid4().hex
    code, body = await post_json(
        http,
        f"{url}/widget/{WIDGET_CHANNEL}/messages",
        bearer(session),
        {"text": text, "client_message_id": client_id, "name": "Vera Visitor"},
    )
    assert code == 202, body
    assert body["message_id"] == client_id
    return client_id


async def visitor_socket(
    http: aiohttp.ClientSession, url: str, session: dict[str, Any]
) -> tuple[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]]:
    ws_url = url.replace("http", "ws", 1) + f"/widget/{WIDGET_CHANNEL}/socket"
    ws = await http.ws_connect(ws_url, params={"token": session["token"]})
    hello = await next_ws_event(ws, lambda _: True)
    assert hello == {"type": "hello", "visitor_id": session["visitor_id"]}
    history = await next_ws_event(ws, lambda _: True)
    assert history["type"] == "history"
    return ws, list(history["messages"])


# -- the script, the demo page ------------------------------------------------------------------


async def test_the_script_and_the_demo_page_come_through_the_gateway(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{stack.url}/widget/{DEMO_CHANNEL}.js") as resp:
        script = await resp.text()
        assert resp.status == 200
        assert resp.content_type == "application/javascript"
    assert '"channel": "web-demo"' in script and "demo-widget-secret" not in script
    async with http.get(f"{stack.url}/widget/demo.html") as resp:
        page = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
    assert '<script src="/widget/web-demo.js" async></script>' in page
    for path in ("/widget/tg-demo.js", "/widget/nope.js"):  # not a widget channel
        async with http.get(stack.url + path) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "unknown_channel"


# -- the signed webhook --------------------------------------------------------------------------


async def test_the_signed_webhook_takes_a_visitor_message_once_within_five_minutes(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    url = f"{stack.url}/webhooks/widget/{DEMO_CHANNEL}"
    visitor = f"site-{uuid.uuid4().hex[:12]}"
    raw = json.dumps(
        {
            "visitor_id": visitor,
            "name": "Sam Site",
            "email": "sam@example.com",
            "text": "Sent by the shop's backend",
            "attachments": [{"url": "https://shop.example/a.pdf", "name": "a.pdf"}],
            "page_url": "https://shop.example/checkout",
        }
    ).encode()
    headers = signed_headers(DEMO_SECRET, raw)
    async with http.post(url, data=raw, headers=headers) as resp:
        first = await resp.json()
        assert resp.status == 200, first
    # A replay of the very request inside the window: the same event (consumers dedupe it).
    async with http.post(url, data=raw, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["event_id"] == first["event_id"]
    refused = [
        signed_headers("wrong-secret", raw),
        signed_headers(DEMO_SECRET, raw, now=time.time() - 301),  # stale: replayed too late
        signed_headers(DEMO_SECRET, raw, now=time.time() + 301),
        {"Content-Type": "application/json"},
    ]
    for bad in refused:
        async with http.post(url, data=raw, headers=bad) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_secret"
    bad_body = b'{"visitor_id": "x", "text": "t", "surprise": 1}'
    async with http.post(url, data=bad_body, headers=signed_headers(DEMO_SECRET, bad_body)) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_update"
    # The dialog opened on the demo line, once; closed again so the demo operators stay free.
    sue = stack.auth("sue", "supervisor")
    dialog = await dialog_of_chat(http, stack.url, sue, visitor)  # type: ignore[arg-type]
    assert dialog["channel_type"] == "widget" and dialog["customer"]["name"] == "Sam Site"
    timeline = await json_if_ok(http, f"{stack.url}/api/v1/dialogs/{dialog['id']}/timeline", sue)
    inbound = [m for m in timeline["items"] if m["direction"] == "in"]
    assert len(inbound) == 1 and inbound[0]["attachments"][0]["file_name"] == "a.pdf"
    code, body = await post_json(http, f"{stack.url}/api/v1/dialogs/{dialog['id']}/close", sue)
    assert code == 200, body


# -- a visitor's conversation --------------------------------------------------------------------


async def test_a_visitor_writes_the_operator_answers_and_the_visitor_sees_it_live(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    operator = stack.auth(WIDGET_OPERATOR)
    await set_presence(http, stack.url, operator, WIDGET_OPERATOR, "online")
    session = await visitor_session(http, stack.url, WIDGET_CHANNEL)
    ws, history = await visitor_socket(http, stack.url, session)
    assert history == []
    client_id = await visitor_writes(http, stack.url, session, "Do you ship to Lviv?")
    mine = await next_ws_event(ws, lambda f: f["type"] == "message")
    assert mine["message"]["id"] == client_id and mine["message"]["direction"] == "in"

    dialog = await dialog_of_chat(
        http,
        stack.url,
        operator,
        session["visitor_id"],
        where=lambda d: d["assignee_id"] == WIDGET_OPERATOR,
    )
    assert dialog["customer"]["name"] == "Vera Visitor"
    stream = await http.ws_connect(
        stack.url.replace("http", "ws", 1) + "/api/v1/stream", headers=operator
    )
    await next_ws_event(stream, lambda f: f["type"] == "hello")
    await stream.send_json({"type": "typing", "dialog_id": dialog["id"]})
    typing = await next_ws_event(ws, lambda f: f["type"] == "typing")
    assert typing == {"type": "typing", "name": "Widget Ann"}
    # The visitor typing reaches the operator's stream.
    await ws.send_json({"type": "typing"})
    seen = await next_ws_event(stream, lambda f: f["type"] == "customer_typing")
    assert seen["dialog_id"] == dialog["id"]

    code, reply = await post_json(
        http,
        f"{stack.url}/api/v1/dialogs/{dialog['id']}/messages",
        operator,
        {"text": "Yes, in two days.", "client_message_id": uuid.uuid4().hex},
    )
    assert code == 202, reply
    answer = await next_ws_event(ws, lambda f: f["type"] == "message")
    shown = answer["message"]
    assert shown["direction"] == "out" and shown["text"] == "Yes, in two days."
    assert shown["author"] == "Widget Ann" and shown["id"].startswith("wm-")

    timeline_url = f"{stack.url}/api/v1/dialogs/{dialog['id']}/timeline"

    async def status_is(status: str) -> dict[str, Any] | None:
        body = await json_if_ok(http, timeline_url, operator)
        for item in (body or {}).get("items", []):
            if item["id"] == reply["message_id"] and (item["delivery"] or {}).get("status") == (
                status
            ):
                return dict(item)
        return None

    await eventually(lambda: status_is("sent"), "the reply marked sent")
    for status in ("delivered", "read"):
        code, body = await post_json(
            http,
            f"{stack.url}/widget/{WIDGET_CHANNEL}/receipts",
            bearer(session),
            {"status": status, "message_ids": [shown["id"]]},
        )
        assert code == 202 and body == {"ok": True, "accepted": 1}
        item = await eventually(partial(status_is, status), f"the reply marked {status}")
        assert item["delivery"]["provider_message_id"] == shown["id"]
    await ws.close()
    await stream.close()

    # Reconnecting (another tab, a reload): the conversation so far, in order.
    again, history = await visitor_socket(http, stack.url, session)
    assert [(m["direction"], m["text"]) for m in history] == [
        ("in", "Do you ship to Lviv?"),
        ("out", "Yes, in two days."),
    ]
    await again.close()


async def test_a_visitor_token_opens_its_own_conversation_only(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    operator = stack.auth(WIDGET_OPERATOR)
    await set_presence(http, stack.url, operator, WIDGET_OPERATOR, "online")
    alice = await visitor_session(http, stack.url, WIDGET_CHANNEL)
    bob = await visitor_session(http, stack.url, WIDGET_CHANNEL)
    assert alice["visitor_id"] != bob["visitor_id"]
    alice_ws, _ = await visitor_socket(http, stack.url, alice)
    bob_ws, _ = await visitor_socket(http, stack.url, bob)
    await visitor_writes(http, stack.url, bob, "Bob's secret question")
    await next_ws_event(bob_ws, lambda f: f["type"] == "message")
    dialog = await dialog_of_chat(
        http,
        stack.url,
        operator,
        bob["visitor_id"],
    )
    code, _ = await post_json(
        http,
        f"{stack.url}/api/v1/dialogs/{dialog['id']}/messages",
        operator,
        {"text": "Bob's private answer", "client_message_id": uuid.uuid4().hex},
    )
    assert code == 202
    await next_ws_event(
        bob_ws, lambda f: f["type"] == "message" and f["message"]["direction"] == "out"
    )
    # Alice's socket got nothing of Bob's conversation (everything queued so far: ping/pong).
    assert await pushed(alice_ws) == []
    await alice_ws.close()
    _, history = await visitor_socket(http, stack.url, alice)
    assert history == []
    # Her token is no key to another channel, and a tampered one is no key at all.
    ws_url = stack.url.replace("http", "ws", 1)
    for channel, token in (
        (DEMO_CHANNEL, alice["token"]),
        (WIDGET_CHANNEL, alice["token"][:-4] + "AAAA"),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{ws_url}/widget/{channel}/socket", params={"token": token})
        assert refused.value.status == 401
        code, body = await post_json(
            http,
            f"{stack.url}/widget/{channel}/messages",
            {"Authorization": f"Bearer {token}"},
            {"text": "x", "client_message_id": "x1"},
        )
        assert code == 401 and body["error"]["code"] == "invalid_visitor_token"
    # An operator's token is not a visitor token either.
    code, body = await post_json(
        http,
        f"{stack.url}/widget/{WIDGET_CHANNEL}/messages",
        operator,
        {"text": "x", "client_message_id": "x2"},
    )
    assert code == 401
    await bob_ws.close()


async def test_visitors_are_rate_and_size_limited(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    session = await visitor_session(http, stack.url, WIDGET_CHANNEL)
    url = f"{stack.url}/widget/{WIDGET_CHANNEL}/messages"
    big = {"text": "x" * 4000, "client_message_id": "big", "page_url": "y" * 2000}
    too_big = json.dumps({**big, "name": "z" * 11_000}).encode()
    async with http.post(url, data=too_big, headers=bearer(session)) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"
    # Chunked (no Content-Length): counted as it arrives.

    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 1024

    async with http.post(url, data=chunks(), headers=bearer(session)) as resp:
        assert resp.status == 413
    statuses = []
    for n in range(WIDGET_RATE + 1):
        async with http.post(
            url, json={"text": f"spam {n}", "client_message_id": f"s{n}"}, headers=bearer(session)
        ) as resp:
            statuses.append(resp.status)
            body = await resp.json()
    assert 429 in statuses, statuses
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["retry_after_seconds"] > 0
    # Another visitor is not held back by this one.
    other = await visitor_session(http, stack.url, WIDGET_CHANNEL)
    await visitor_writes(http, stack.url, other, "I am not spamming")
