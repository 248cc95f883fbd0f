"""Small client helpers for the end-to-end tests: a customer, an operator, a poll."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from openlines.kit.testing import waiting

T = TypeVar("T")
_ids = itertools.count(int(time.time() * 1000) % 10**9)

CHANNEL = "tg-demo"
SECRET = "demo-secret"


def telegram_update(chat_id: int, name: str, text: str) -> dict[str, Any]:
    n = next(_ids)
    first, _, last = name.partition(" ")
    user = {"id": chat_id, "is_bot": False, "first_name": first, "last_name": last or None}
    return {
        "update_id": n,
        "message": {
            "message_id": n,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": first},
            "from": {k: v for k, v in user.items() if v is not None},
            "text": text,
        },
    }


async def post_update(
    http: aiohttp.ClientSession,
    base: str,
    update: dict[str, Any],
    *,
    channel: str = CHANNEL,
    secret: str = SECRET,
) -> dict[str, Any]:
    """Telegram delivers `update` to the channel's webhook; ingest's 200 answer."""
    async with http.post(
        f"{base}/webhooks/telegram/{channel}",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": secret},
    ) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        return dict(json.loads(text))


async def customer_says(
    http: aiohttp.ClientSession,
    base: str,
    chat_id: int,
    name: str,
    text: str,
    *,
    channel: str = CHANNEL,
    secret: str = SECRET,
) -> dict[str, Any]:
    update = telegram_update(chat_id, name, text)
    return await post_update(http, base, update, channel=channel, secret=secret)


async def set_presence(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], operator: str, status: str
) -> None:
    """`headers`: the operator's own, or a supervisor's."""
    url = f"{base}/api/v1/operators/{operator}/presence"
    code, body = await post_json(http, url, headers, {"status": status}, method="PUT")
    assert code == 200, body


async def dialog_of_chat(
    http: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    chat_id: int,
    *,
    query: str = "tab=all",
    where: Callable[[dict[str, Any]], object] = lambda _: True,
    what: str = "the customer's dialog",
) -> dict[str, Any]:
    """Poll the caller's list (`query`) until it shows a dialog of this Telegram chat (and
    `where` holds for it)."""

    async def found() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/api/v1/dialogs?{query}", headers)
        for dialog in (body or {}).get("items", []):
            if dialog["customer"]["external_id"] == str(chat_id) and where(dialog):
                return dict(dialog)
        return None

    return await eventually(found, what)


async def get_json(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: Any = None,
    method: str = "POST",
) -> tuple[int, Any]:
    async with http.request(method, url, json=body or {}, headers=headers) as resp:
        return resp.status, await resp.json()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    timeout: float = 30.0,
    interval: float = 0.1,
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    return await waiting.eventually(probe, what=what, timeout=timeout, interval=interval)


async def json_if_ok(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Any:
    """The body of a 200 answer, else None (for polling what is not there, or not up, yet)."""
    try:
        status, body = await get_json(http, url, headers)
    except aiohttp.ClientConnectionError:
        return None
    return body if status == 200 else None


async def next_ws_event(
    ws: aiohttp.ClientWebSocketResponse,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"websocket closed: {msg!r}")
            data = msg.json()
            if predicate(data):
                return dict(data)


async def pushed(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Everything queued for this session so far: a ping's pong is queued behind it."""
    await ws.send_json({"type": "ping"})
    frames = []
    while (message := await next_ws_event(ws, lambda _: True))["type"] != "pong":
        frames.append(message)
    return frames


async def unassigned_dialog(
    http: aiohttp.ClientSession,
    url: str,
    supervisor: dict[str, str],
    chat: int,
    name: str = "Rae Race",
    text: str = "hello?",
) -> str:
    """A dialog nobody is online to take: ann and bob go offline first, then the customer
    writes; returns the dialog's id once the supervisor sees it in the Unassigned tab."""
    for op in ("ann", "bob"):
        await set_presence(http, url, supervisor, op, "offline")
    await customer_says(http, url, chat, name, text)
    found = await dialog_of_chat(
        http, url, supervisor, chat, query="tab=unassigned", what="the unassigned dialog"
    )
    return str(found["id"])
