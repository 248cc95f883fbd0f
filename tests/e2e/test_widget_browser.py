"""The widget in a real browser: headless Debian Chromium driven by Playwright (Python).

A shop page on an origin of its own embeds the widget with one <script> tag pointing at the
gateway; the visitor opens the box and writes; the operator answers through the API and types
in the dialog; the visitor sees the typing and the answer, the reply's delivery reaches `read`
in the timeline, and a reload shows the conversation so far. A screenshot is kept in
.openlines/test-artifacts/ (gitignored).

Chromium comes from Debian (`apt-get install chromium`), never from Playwright's downloads:
the fixture installs it when it is missing and it can (root, apt-get), and otherwise skips
loudly. CI runs as root on Debian, so there it always runs.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from openlines.kit.embedded import reserve_port

from .conftest import REPO, WIDGET_CHANNEL, WIDGET_OPERATOR, Stack
from .steps import dialog_of_chat, eventually, json_if_ok, next_ws_event, post_json, set_presence

pytestmark = pytest.mark.infra  # runs servers or processes of its own

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / ".openlines" / "test-artifacts"


def _install_chromium() -> str | None:
    """Debian's chromium, installed when missing (and possible); None with the reason why not
    in a loud warning."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or shutil.which("id") is None:
        return None
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        return None
    for command in ([apt, "update"], [apt, "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 and command[-1] == "chromium":
            warnings.warn(f"apt-get install chromium failed: {done.stderr[-500:]}", stacklevel=1)
            return None
    return CHROMIUM if Path(CHROMIUM).exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _install_chromium()
    if path is None:
        message = (
            "\n" + "!" * 78 + "\n!! SKIPPED: the widget browser test needs Debian's `chromium`"
            " (apt-get install chromium),\n!! which cannot be installed here (not root, or no"
            " apt-get).\n" + "!" * 78
        )
        print(message)
        pytest.skip(message)
    return path


@pytest.fixture
async def shop(stack: Stack) -> AsyncIterator[str]:
    """A shop page on an origin of its own (another port): the widget is cross-origin."""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1><p>Welcome.</p>
<script src="{stack.url}/widget/{WIDGET_CHANNEL}.js" async></script></body></html>"""

    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/shop.html", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = reserve_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/shop.html"
    finally:
        await runner.cleanup()


async def test_a_visitor_chats_in_the_browser_and_sees_the_operator_answer_live(
    stack: Stack,
    http: aiohttp.ClientSession,
    chromium: str,
    shop: str,
    record_property: Any,
) -> None:
    from playwright.async_api import async_playwright, expect

    operator = stack.auth(WIDGET_OPERATOR)
    await set_presence(http, stack.url, operator, WIDGET_OPERATOR, "online")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(shop)
            await page.click("#openlines-widget-button")
            await page.fill(".ol-input", "Hello from the browser!")
            await page.press(".ol-input", "Enter")
            await expect(page.locator(".ol-msg.ol-in")).to_have_text("Hello from the browser!")
            await expect(page.locator("#openlines-widget")).to_have_attribute(
                "data-connected", "true"
            )
            visitor = await page.evaluate(
                f"JSON.parse(localStorage.getItem('openlines-widget:{WIDGET_CHANNEL}')).visitor_id"
            )
            dialog = await dialog_of_chat(
                http,
                stack.url,
                operator,
                visitor,
                where=lambda d: d["assignee_id"] == WIDGET_OPERATOR,
            )
            assert dialog["last_message"]["text"] == "Hello from the browser!"

            # The operator types, then answers, through the gateway.
            stream = await http.ws_connect(
                stack.url.replace("http", "ws", 1) + "/api/v1/stream", headers=operator
            )
            await next_ws_event(stream, lambda f: f["type"] == "hello")
            await stream.send_json({"type": "typing", "dialog_id": dialog["id"]})
            await expect(page.locator(".ol-typing")).to_have_text("Widget Ann is typing…")
            # The visitor types too: the operator's stream hears of it.
            # The widget sends typing at most every 3 s, and notify tells the dialog's watchers
            # as its own view has them (it may lag the assignment just seen): type again until
            # the operator hears of it.
            seen: dict[str, Any] | None = None
            for attempt in range(10):
                await page.fill(".ol-input", "and" + "." * attempt)
                try:
                    seen = await next_ws_event(
                        stream, lambda f: f["type"] == "customer_typing", timeout=4
                    )
                    break
                except TimeoutError:
                    continue
            assert seen is not None, "the visitor's typing never reached the operator"
            assert seen["dialog_id"] == dialog["id"]
            await stream.close()
            code, reply = await post_json(
                http,
                f"{stack.url}/api/v1/dialogs/{dialog['id']}/messages",
                operator,
                {"text": "Hi! How can we help?", "client_message_id": uuid.uuid4().hex},
            )
            assert code == 202, reply
            await expect(page.locator(".ol-msg.ol-out")).to_have_text("Hi! How can we help?")
            await expect(page.locator(".ol-typing")).to_have_text("")
            shot = ARTIFACTS / "widget-browser.png"
            await page.screenshot(path=str(shot))
            record_property("figures", f"screenshot {shot}")

            # The box is open and visible: the browser reports delivered, then read.
            timeline = f"{stack.url}/api/v1/dialogs/{dialog['id']}/timeline"

            async def read() -> dict[str, Any] | None:
                body = await json_if_ok(http, timeline, operator)
                for item in (body or {}).get("items", []):
                    if (
                        item["id"] == reply["message_id"]
                        and (item["delivery"] or {}).get("status") == "read"
                    ):
                        return dict(item)
                return None

            await eventually(read, "the reply read in the timeline")

            # A reload (a returning visitor): the conversation so far, from the socket.
            await page.reload()
            await page.click("#openlines-widget-button")
            await expect(page.locator(".ol-msg")).to_have_text(
                ["Hello from the browser!", "Hi! How can we help?"]
            )
        finally:
            await browser.close()
    assert shot.stat().st_size > 1000
