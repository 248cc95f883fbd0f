"""Publishing envelopes to a suite's topics, as another service's relay would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.kafka.producer import create_producer


class Publisher:
    """`await publisher.publish(DIALOGS, env, ...)` sends to `<namespace><topic>` and waits
    for the broker's ack, in order (same key, same partition)."""

    def __init__(self, producer: AIOKafkaProducer, namespace: str = "") -> None:
        self.producer = producer
        self.namespace = namespace

    async def publish(self, topic: str, *envelopes: Envelope) -> None:
        for env in envelopes:
            record = encode(env)
            await self.producer.send_and_wait(
                f"{self.namespace}{topic}", record.value, key=record.key, headers=record.headers
            )


@asynccontextmanager
async def publisher(
    bootstrap: str, namespace: str = "", client_id: str = "test-publisher"
) -> AsyncIterator[Publisher]:
    producer = create_producer(bootstrap, client_id=client_id)
    await producer.start()
    try:
        yield Publisher(producer, namespace)
    finally:
        await producer.stop()
