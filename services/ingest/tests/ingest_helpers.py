"""ingest test helpers: Telegram updates, a client for the running ingest, a topic reader."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from openlines.events import INBOUND
from openlines.ingest.settings import IngestSettings
from openlines.kit.embedded import reserve_port
from openlines.kit.testing.kafka import Record, read_topic

SECRET = "tg-test-secret"
WA_SECRET, WA_PHONE, WA_VERIFY = "wa-secret", "100200", "wa-verify"

LINES_YAML = f"""
operators:
  - {{id: ann, role: operator}}
lines:
  - id: test-line
    channels:
      - {{id: tg-test, type: telegram, secret: {SECRET}, token: "1:t", api_base: http://x}}
      - {{id: tg-nosecret, type: telegram, token: "2:t", api_base: http://x}}
      - {{id: wa-test, type: whatsapp, secret: {WA_SECRET}, token: t, api_base: http://x,
         whatsapp: {{phone_number_id: "{WA_PHONE}", verify_token: {WA_VERIFY}}}}}
    operators: [ann]
"""

_ids = itertools.count(int(time.time()))


def next_id() -> int:
    """Unique Telegram ids across the session (tests share one broker)."""
    return next(_ids)


def tg_message(chat_id: int, *, message_id: int | None = None, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else next_id(),
        "from": {
            "id": chat_id,
            "is_bot": False,
            "first_name": "Ann",
            "last_name": "Customer",
            "username": "ann_c",
            "language_code": "en",
        },
        "chat": {"id": chat_id, "first_name": "Ann", "type": "private"},
        "date": 1_700_000_000,
        "text": "hello",
    }
    message.update(fields)
    return {"update_id": next_id(), "message": message}


def ingest_settings(bootstrap: str, lines_file: Path, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "http_port": reserve_port(),
        "topic_namespace": f"t{secrets.token_hex(5)}.",
        "create_topics": True,
        "lines_file": str(lines_file),
        "log_json": False,
        **overrides,
    }
    return IngestSettings(**values)


class Ingest:
    def __init__(self, url: str, settings: IngestSettings, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.settings = settings
        self.http = http

    @property
    def inbound_topic(self) -> str:
        return f"{self.settings.topic_namespace}{INBOUND}"

    async def post(
        self,
        body: Any,
        *,
        path: str = "/webhooks/telegram/tg-test",
        secret: str | None = SECRET,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if secret is not None:
            sent["X-Telegram-Bot-Api-Secret-Token"] = secret
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes | str) else {"json": body}
        async with self.http.post(self.url + path, headers=sent, **kwargs) as resp:
            return resp.status, await resp.json()


# Every record of a topic from the beginning, until `done(records)` holds.
read_until = read_topic


def header(record: Record, name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


def has_event(event_id: str) -> Callable[[list[Record]], bool]:
    return lambda records: any(header(r, "event_id") == event_id for r in records)
