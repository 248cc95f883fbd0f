"""`openlines say`: a signed Telegram Update, as the real CLI process sends it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from openlines.events import INBOUND, decode
from openlines.events.catalog import MessageReceived
from openlines.kit.embedded import reserve_port
from openlines.kit.testing.kafka import read_topic
from openlines.kit.testing.lines import write_lines

pytestmark = pytest.mark.infra  # runs servers or processes of its own

LINES_YAML = """
operators: [{id: ann}]
lines:
  - id: cli-line
    channels:
      - {id: tg-cli, type: telegram, secret: cli-secret, token: "1:t", api_base: http://x}
      - {id: wa-cli, type: whatsapp, secret: wa-cli-secret, token: t, api_base: http://x,
         whatsapp: {phone_number_id: "555"}}
      - {id: vb-cli, type: viber, secret: s, token: t, api_base: http://x}
    operators: [ann]
"""


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path, LINES_YAML)


async def _say(*argv: str, lines_file: Path) -> tuple[int, str, str]:
    env = {**os.environ, "OPENLINES_LINES_FILE": str(lines_file)}
    env.pop("OPENLINES_SECRET_TG_CLI", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.cli.main",
        "say",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def capture() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        seen.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "body": await request.json(),
            }
        )
        return web.json_response({"ok": True, "event_id": "e-1"})

    app = web.Application()
    app.router.add_post("/webhooks/telegram/{channel}", webhook)
    app.router.add_post("/webhooks/whatsapp/{channel}", webhook)
    app.router.add_post("/sandbox/{channel}/press", webhook)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), seen
    finally:
        await server.close()


async def test_say_sends_a_signed_telegram_update(
    capture: tuple[str, list[dict[str, Any]]], lines_file: Path
) -> None:
    url, seen = capture
    before = int(time.time())
    argv = ["--url", url, "--channel", "tg-cli", "--chat", "42", "--name", "Ann Lee"]
    code, out, _ = await _say(
        *argv, "--username", "annl", "--reply-to", "7", "hi!", lines_file=lines_file
    )
    assert code == 0
    assert out.strip() == '200 {"ok": true, "event_id": "e-1"}'
    code, _, _ = await _say(*argv, "again", lines_file=lines_file)
    assert code == 0

    first, second = seen
    assert first["path"] == "/webhooks/telegram/tg-cli"
    assert first["headers"]["X-Telegram-Bot-Api-Secret-Token"] == "cli-secret"
    assert first["headers"]["Content-Type"] == "application/json"
    update = first["body"]
    message = update["message"]
    assert message["text"] == "hi!"
    assert message["chat"] == {"id": 42, "type": "private", "first_name": "Ann"}
    assert message["from"] == {
        "id": 42,
        "is_bot": False,
        "first_name": "Ann",
        "last_name": "Lee",
        "username": "annl",
    }
    assert message["reply_to_message"]["message_id"] == 7
    assert message["date"] >= before
    # Fresh ids per call: a second message is not a retry of the first.
    assert second["body"]["update_id"] > update["update_id"]
    assert second["body"]["message"]["message_id"] > message["message_id"]


async def test_say_sends_a_signed_whatsapp_notification(
    capture: tuple[str, list[dict[str, Any]]], lines_file: Path
) -> None:
    url, seen = capture
    argv = ["--url", url, "--channel", "wa-cli", "--chat", "4917000", "--name", "Ann Lee"]
    code, out, _ = await _say(*argv, "hallo", lines_file=lines_file)
    assert code == 0, out

    (posted,) = seen
    assert posted["path"] == "/webhooks/whatsapp/wa-cli"
    body = posted["body"]
    raw = json.dumps(body).encode()  # the CLI sends compact JSON with json.dumps' defaults
    expected = "sha256=" + hmac.new(b"wa-cli-secret", raw, hashlib.sha256).hexdigest()
    assert posted["headers"]["X-Hub-Signature-256"] == expected
    value = body["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == "555"
    assert value["contacts"] == [{"profile": {"name": "Ann Lee"}, "wa_id": "4917000"}]
    (message,) = value["messages"]
    assert message["from"] == "4917000" and message["text"] == {"body": "hallo"}
    assert message["id"].startswith("wamid.")


async def test_say_fails_clearly(
    capture: tuple[str, list[dict[str, Any]]], lines_file: Path
) -> None:
    url, seen = capture
    code, _, err = await _say(
        "--url", url, "--channel", "nope", "--chat", "1", "x", lines_file=lines_file
    )
    assert code == 2
    assert "no telegram or whatsapp channel 'nope'" in err
    code, _, err = await _say(
        "--url", url, "--channel", "vb-cli", "--chat", "1", "x", lines_file=lines_file
    )
    assert code == 2
    dead = f"http://127.0.0.1:{reserve_port()}"
    code, _, err = await _say(
        "--url", dead, "--channel", "tg-cli", "--chat", "1", "x", lines_file=lines_file
    )
    assert code == 1
    assert "cannot reach" in err and "openlines up" in err
    assert seen == []


async def test_say_through_the_real_ingest(kafka_bootstrap: str, lines_file: Path) -> None:
    from openlines.ingest.app import build_service
    from openlines.ingest.settings import IngestSettings
    from openlines.kit.testing.service import running

    settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap,
        http_port=reserve_port(),
        topic_namespace=f"cli{secrets.token_hex(4)}.",
        create_topics=True,
        lines_file=str(lines_file),
        log_json=False,
    )
    async with running(build_service(settings)) as url:
        argv = ["--url", url, "--channel", "tg-cli", "--chat", "4242", "--name", "Ann Lee"]
        code, out, _ = await _say(*argv, "--message-id", "99", "hello there", lines_file=lines_file)
        assert code == 0, out
        status, body = out.split(" ", 1)
        assert status == "200"
        event_id = json.loads(body)["event_id"]
        # Told to resend the same message id, it is a provider retry: the same event id.
        code, again, _ = await _say(
            *argv, "--message-id", "99", "hello there", lines_file=lines_file
        )
        assert code == 0
        assert json.loads(again.split(" ", 1)[1])["event_id"] == event_id
        code, denied, _ = await _say(*argv, "--secret", "wrong", "x", lines_file=lines_file)
        assert code == 1
        assert denied.startswith("401 ") and "invalid_secret" in denied

        records = await read_topic(kafka_bootstrap, settings.topic_namespace + INBOUND, 2)
    envs = [decode(r.value, r.headers, topic=INBOUND) for r in records]
    assert [str(e.event_id) for e in envs] == [event_id, event_id]
    payload = envs[0].payload
    assert isinstance(payload, MessageReceived)
    assert (payload.text, payload.customer.name) == ("hello there", "Ann Lee")
    assert payload.conversation_key == "tg-cli:4242"
    assert payload.line_id == "cli-line"


async def test_say_press_asks_the_sandbox_to_press_the_button(
    capture: tuple[str, list[dict[str, Any]]], lines_file: Path
) -> None:
    """`--press 4`: the sandbox presses the chat's button "4" and delivers the callback query
    (it holds the keyboard and the secret), so the CLI only names the chat and the button."""
    url, seen = capture
    argv = ["--url", url, "--channel", "tg-cli", "--chat", "42", "--name", "Ann Lee"]
    code, out, _ = await _say(*argv, "--press", "4", lines_file=lines_file)
    assert code == 0, out
    [pressed] = seen
    assert pressed["path"] == "/sandbox/tg-cli/press"
    assert pressed["body"] == {"chat_id": 42, "text": "4", "name": "Ann Lee"}
    code, _, err = await _say("--url", url, "--chat", "42", lines_file=lines_file)
    assert code == 2 and "--press" in err  # neither text nor a button
