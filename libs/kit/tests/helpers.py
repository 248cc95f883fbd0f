"""Shared test helpers: read a topic to its end, a tiny event payload, a catch-all consumer."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka import ConsumerRecord

from openlines.events.catalog import DialogRenamed
from openlines.kit.subscription import Handler, Subscription
from openlines.kit.testing.kafka import read_topic


def catch_all(name: str, topic: str, handler: Handler, **options: Any) -> Subscription[Any]:
    """A subscription whose one handler takes every event of the topic."""
    sub: Subscription[Any] = Subscription(name, [topic], **options)
    sub.on_any(handler)
    return sub


def renamed(i: int, stream: str = "d") -> DialogRenamed:
    return DialogRenamed(
        dialog_id=uuid.uuid5(uuid.NAMESPACE_URL, stream), title=f"title {i}", actor_id="op"
    )


async def read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the beginning until `expected` records arrived, then on to the end of the
    topic as it is then, so duplicates past `expected` are seen too."""
    return await read_topic(bootstrap, topic, expected, timeout=timeout, to_end=True)
