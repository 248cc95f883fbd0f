"""The sandbox as WhatsApp's Cloud API: message shapes, and the signed status webhooks it posts
back (sent, delivered, read; or failed when told to)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from openlines.stack.sandbox import SandboxSettings, create_sandbox_app

pytestmark = pytest.mark.infra  # runs servers of its own

SECRET, TOKEN = "app-secret", "wa-token"
PATH = "/sandbox/wa-demo/v21.0/100200300/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Ingest:
    """Stands in for ingest: records each status webhook and checks its signature."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.signed: list[bool] = []
        self.arrived = asyncio.Condition()

    async def webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        self.signed.append(request.headers.get("X-Hub-Signature-256") == expected)
        async with self.arrived:
            self.posted.append(json.loads(raw))
            self.arrived.notify_all()
        return web.json_response({"ok": True, "event_ids": []})

    async def statuses(self, count: int) -> list[str]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.posted) >= count), 10)
        return [
            s["status"]
            for body in self.posted
            for e in body["entry"]
            for c in e["changes"]
            for s in c["value"]["statuses"]
        ]


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[Ingest, str]]:
    fake = Ingest()
    app = web.Application()
    app.router.add_post("/webhooks/whatsapp/{channel_id}", fake.webhook)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def client(ingest: tuple[Ingest, str]) -> AsyncIterator[TestClient[Any, Any]]:
    settings = SandboxSettings(log_json=False, webhook_base=ingest[1])
    app = create_sandbox_app(settings, {"wa-demo": TOKEN}, secrets={"wa-demo": SECRET})
    async with TestClient(TestServer(app)) as c:
        yield c


def _text(to: str, text: str, **more: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": {"body": text},
        **more,
    }


async def test_an_accepted_message_is_followed_by_sent_delivered_read(
    client: TestClient[Any, Any], ingest: tuple[Ingest, str]
) -> None:
    fake, _ = ingest
    resp = await client.post(
        PATH, json=_text("4917000", "hi", context={"message_id": "wamid.in"}), headers=AUTH
    )
    assert resp.status == 200
    wamid = (await resp.json())["messages"][0]["id"]

    assert await fake.statuses(3) == ["sent", "delivered", "read"]
    assert all(fake.signed)
    value = fake.posted[0]["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == "100200300"
    assert value["statuses"][0]["id"] == wamid
    assert value["statuses"][0]["recipient_id"] == "4917000"

    sent = await (await client.get("/sandbox/wa-demo/sent")).json()
    (message,) = sent["sent"]
    assert (message["wamid"], message["reply_to_message_id"]) == (wamid, "wamid.in")
    assert [w["status"] for w in sent["status_webhooks"]] == ["sent", "delivered", "read"]
    assert {w["answer"] for w in sent["status_webhooks"]} == {200}


async def test_a_delivery_failure_fault_posts_failed(
    client: TestClient[Any, Any], ingest: tuple[Ingest, str]
) -> None:
    fake, _ = ingest
    resp = await client.post(
        "/sandbox/wa-demo/faults", json={"status": 200, "delivery_failure": True}
    )
    assert resp.status == 200
    resp = await client.post(PATH, json=_text("4917000", "lost"), headers=AUTH)
    assert resp.status == 200
    assert await fake.statuses(2) == ["sent", "failed"]
    failed = fake.posted[1]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert failed["errors"][0]["code"] == 131026


async def test_templates_media_and_refusals(client: TestClient[Any, Any]) -> None:
    template = {
        "messaging_product": "whatsapp",
        "to": "1",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A1"}]}],
        },
    }
    assert (await client.post(PATH, json=template, headers=AUTH)).status == 200
    image = {"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {"id": "m1"}}
    assert (await client.post(PATH, json=image, headers=AUTH)).status == 200
    sent = (await (await client.get("/sandbox/wa-demo/sent")).json())["sent"]
    assert [(m["type"], m["text"]) for m in sent] == [
        ("template", "order_update | A1"),
        ("image", ""),
    ]
    # No token, a bad body, an over-long text: Graph's errors.
    resp = await client.post(PATH, json=_text("1", "x"))
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, 190)
    bad = {"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {}}
    resp = await client.post(PATH, json=bad, headers=AUTH)
    assert (resp.status, (await resp.json())["error"]["code"]) == (400, 100)
    resp = await client.post(PATH, json=_text("1", "x" * 4097), headers=AUTH)
    assert resp.status == 400
