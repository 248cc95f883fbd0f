"""Test driver for the dialogs service running in-process on the real broker and Postgres.

Input events go to the namespaced topics through the kit's test publisher (as ingest, routing,
outbound and crm-link would publish them); the operator API is driven over HTTP with dev JWTs.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from openlines.dialogs.handlers import opened_dialog_id
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS, INBOUND
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.auth import bearer
from openlines.kit.testing.kafka import TopicReader
from openlines.kit.testing.publish import Publisher
from openlines.kit.testing.waiting import eventually, handled, wait_handled

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
CHANNEL = "tg-demo"
ROLES = {
    "ann": "operator",
    "bob": "operator",
    "carl": "operator",
    "sue": "supervisor",
    "vic": "supervisor",
    "zed": "operator",
}


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class DialogsStack:
    url: str
    namespace: str
    bootstrap: str
    runtime: ServiceRuntime
    http: aiohttp.ClientSession
    publisher: Publisher

    # -- HTTP -----------------------------------------------------------------------------

    def auth(self, who: str) -> dict[str, str]:
        return bearer(who, ROLES[who], secret=self.runtime.settings.jwt_secret)

    async def get(self, path: str, who: str = "sue", **params: Any) -> Reply:
        async with self.http.get(self.url + path, headers=self.auth(who), params=params) as r:
            return Reply(r.status, await r.json())

    async def post(
        self, path: str, who: str = "sue", json: Any = None, data: bytes | None = None
    ) -> Reply:
        headers = self.auth(who)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.post(self.url + path, headers=headers, json=json, data=data) as r:
            return Reply(r.status, await r.json())

    async def request(
        self, method: str, path: str, who: str = "sue", json: Any = None, **params: Any
    ) -> Reply:
        """Any method; an answer without a body (204) has `body` None."""
        async with self.http.request(
            method, self.url + path, headers=self.auth(who), json=json, params=params
        ) as r:
            return Reply(r.status, None if r.status == 204 else await r.json())

    async def dialog(self, dialog_id: uuid.UUID, who: str = "sue") -> Reply:
        return await self.get(f"/api/v1/dialogs/{dialog_id}", who)

    async def timeline(self, dialog_id: uuid.UUID, who: str = "sue") -> list[dict[str, Any]]:
        reply = await self.get(f"/api/v1/dialogs/{dialog_id}/timeline", who)
        assert reply.status == 200, reply.body
        return list(reply.body["items"])

    # -- Kafka ----------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: EventPayload, *, stream_id: str, event_id: uuid.UUID | None
    ) -> Envelope:
        env = factories.envelope(
            payload,
            stream_id=stream_id,
            stream_version=0,
            event_id=event_id or uuid.uuid4(),
        )
        await self.publisher.publish(topic, env)
        return env

    async def customer_writes(
        self,
        chat_id: str,
        text: str = "hello",
        *,
        external_message_id: str | None = None,
        event_id: uuid.UUID | None = None,
        reply_to_external_id: str | None = None,
    ) -> Envelope:
        """What ingest publishes for a Telegram message (deterministic event id);
        `reply_to_external_id`: the provider id of the message the customer quotes."""
        message = factories.message_received(
            chat_id,
            text,
            channel_id=CHANNEL,
            external_message_id=external_message_id,
            reply_to_external_id=reply_to_external_id,
        )
        return await self.publish(
            INBOUND,
            message,
            stream_id=message.conversation_key,
            event_id=event_id or factories.received_event_id(message),
        )

    async def open_dialog(self, chat_id: str, text: str = "hello") -> uuid.UUID:
        """A customer writes in a new conversation; returns the dialog once it is visible."""
        env = await self.customer_writes(chat_id, text)
        dialog_id = opened_dialog_id(env.event_id)
        await self.eventually(lambda: self._exists(dialog_id))
        return dialog_id

    async def _exists(self, dialog_id: uuid.UUID) -> bool:
        return (await self.dialog(dialog_id)).status == 200

    async def dialog_events(
        self, done: Callable[[list[Envelope]], bool], timeout: float = 30.0
    ) -> list[Envelope]:
        """Read the namespaced DIALOGS topic from the beginning until `done(events)`."""
        reader = TopicReader(self.bootstrap, self.namespace + DIALOGS, DIALOGS)
        async with reader.running():
            await reader.wait_for(lambda r: done(r.seen), "dialog events", timeout)
        return reader.seen

    # -- waiting --------------------------------------------------------------------------

    async def handled(self, event_id: uuid.UUID) -> bool:
        """Has a dialogs consumer applied (or deliberately ignored) this input event?"""
        return await handled(self.runtime.engine, event_id)

    async def wait_handled(self, env: Envelope) -> None:
        await wait_handled(self.runtime.engine, env.event_id)

    async def eventually(self, check: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Poll `check` until it returns something truthy (bounded)."""
        return await eventually(check, timeout=timeout)
