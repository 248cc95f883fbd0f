"""Topic administration: idempotent creation and waiting for a broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

# The largest record a producer of the suite sends (aiokafka's max_request_size), and so the
# largest a topic must accept (max.message.bytes: a batch never exceeds its request).
MAX_RECORD_BYTES = 1 << 20

# Event topics are the system of record for replay (DESIGN §5): never expire them; and accept
# every record the producers may send, whatever the broker's default.
EVENT_TOPIC_CONFIGS: Mapping[str, str] = {
    "retention.ms": "-1",
    "max.message.bytes": str(MAX_RECORD_BYTES),
}

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int | None = None  # None: the `partitions` argument of ensure_topics
    configs: Mapping[str, str] = field(default_factory=dict)


class TopicCreationError(KafkaError):
    pass


@contextlib.asynccontextmanager
async def admin_client(
    bootstrap: str, *, request_timeout: float = 10.0
) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(request_timeout * 1000)
    )
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[TopicSpec | str],
    *,
    partitions: int = 3,
    configs: Mapping[str, str] | None = None,
    replication_factor: int = 1,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Topic configs are `EVENT_TOPIC_CONFIGS` (with `max_record_bytes`, the producers' limit),
    overridden by `configs`, then by the spec's own.
    """
    base = {
        **EVENT_TOPIC_CONFIGS,
        "max.message.bytes": str(max_record_bytes),
        **(configs or {}),
    }
    new = [
        NewTopic(
            spec.name,
            spec.partitions or partitions,
            replication_factor,
            topic_configs={**base, **spec.configs},
        )
        for spec in (TopicSpec(t) if isinstance(t, str) else t for t in topics)
    ]
    if not new:
        return
    async with admin_client(bootstrap) as admin:
        response = await admin.create_topics(new)
    failed = [
        f"{name}: error {code} {message or ''}".rstrip()
        for name, code, message in _topic_errors(response)
        if code not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise TopicCreationError("cannot create topics: " + "; ".join(failed))


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        async with admin_client(bootstrap) as admin:
            await admin.delete_topics(names)


async def wait_for_kafka(bootstrap: str, timeout: float = 30.0) -> None:
    """Return once the broker answers a metadata request; TimeoutError otherwise.

    `timeout` bounds the whole retry loop, not one call, hence not `asyncio.timeout`.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        # A plain TCP connect first: aiokafka logs every failed bootstrap at ERROR level.
        if await _any_port_open(bootstrap):
            try:
                async with admin_client(bootstrap, request_timeout=2.0) as admin:
                    await admin.list_topics()
                return
            except (KafkaError, OSError) as exc:
                last = exc
        await asyncio.sleep(0.1)
    raise TimeoutError(f"kafka at {bootstrap} not reachable after {timeout:.0f}s: {last}")


async def _any_port_open(bootstrap: str) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]") or "127.0.0.1", int(port)), 1.0
            )
        except (OSError, ValueError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    # CreateTopicsResponse v0 has (topic, code); v1+ adds the message.
    rows = getattr(response, "topic_errors", [])
    return [(row[0], row[1], row[2] if len(row) > 2 else None) for row in rows]
