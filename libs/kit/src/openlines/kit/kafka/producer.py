"""Kafka producer settings shared by the relay, the DLQ and direct publishers."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.telemetry import current_traceparent


def create_producer(
    bootstrap: str,
    *,
    client_id: str,
    idempotence: bool = False,
    linger_ms: int = 2,
    max_record_bytes: int = 1 << 20,
) -> AIOKafkaProducer:
    # acks=all always; idempotence only where the broker supports InitProducerId.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=linger_ms,
        request_timeout_ms=15000,
        # A bigger record fails at send() with MessageSizeTooLargeError, before any I/O.
        max_request_size=max_record_bytes,
    )


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    """Send one event and wait for the broker's acknowledgement (for stateless producers
    such as ingest, whose HTTP answer depends on the ack)."""
    record = encode(envelope, traceparent=current_traceparent())
    await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
