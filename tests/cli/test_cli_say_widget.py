"""`openlines say --channel <widget channel>`: the signed widget webhook, as the real CLI
process sends it, checked by the real adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from openlines.events.lines import Channel
from openlines.ingest.widget import WidgetAdapter
from openlines.kit.testing.lines import write_lines

from .test_cli_say import _say

pytestmark = pytest.mark.infra  # runs servers or processes of its own

LINES_YAML = """
operators: [{id: ann}]
lines:
  - id: cli-line
    channels:
      - {id: web-cli, type: widget, secret: cli-widget-secret}
    operators: [ann]
"""
CHANNEL = Channel(id="web-cli", type="widget", secret="cli-widget-secret")


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path, LINES_YAML)


@pytest.fixture
async def capture() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        raw = await request.read()
        verified = WidgetAdapter().verify(CHANNEL, request.headers, raw)
        seen.append({"path": request.path, "verified": verified, "body": await request.json()})
        return web.json_response({"ok": True, "event_id": "e-1"}, status=200 if verified else 401)

    app = web.Application()
    app.router.add_post("/webhooks/widget/{channel}", webhook)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), seen
    finally:
        await server.close()


async def test_say_on_a_widget_channel_posts_the_signed_widget_webhook(
    capture: tuple[str, list[dict[str, Any]]], lines_file: Path
) -> None:
    url, seen = capture
    argv = ["--url", url, "--channel", "web-cli", "--chat", "42", "--name", "Ann Lee"]
    code, out, _ = await _say(*argv, "hi from the site", lines_file=lines_file)
    assert code == 0, out
    code, _, _ = await _say(*argv, "--secret", "wrong", "forged", lines_file=lines_file)
    assert code == 1
    good, forged = seen
    assert good["path"] == "/webhooks/widget/web-cli" and good["verified"]
    assert good["body"] == {"visitor_id": "42", "name": "Ann Lee", "text": "hi from the site"}
    assert not forged["verified"]
