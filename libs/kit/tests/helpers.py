"""Shared test helpers: read a topic to its end, and a tiny event payload."""

from __future__ import annotations

import uuid

from aiokafka import ConsumerRecord

from openlines.events.catalog import DialogRenamed
from openlines.kit.testing.kafka import read_topic


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
