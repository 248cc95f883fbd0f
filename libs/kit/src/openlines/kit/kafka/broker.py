"""The FastStream broker a service's subscribers (and declared publishers) live on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Union

from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

from openlines.events.envelope import EventPayload, envelope_model

_LOG = logging.getLogger("openlines.kit.faststream")


class _NoConsumerOnlyNotice(logging.Filter):
    # The broker is consumer-only (see below), and FastStream warns at every subscriber start
    # that it will not create topics: the kit creates them (kafka.admin.ensure_topics).
    def filter(self, record: logging.LogRecord) -> bool:
        return "Topic creation is skipped" not in record.getMessage()


_LOG.addFilter(_NoConsumerOnlyNotice())


def create_broker(
    bootstrap: str, *, client_id: str, graceful_timeout: float = 300.0
) -> KafkaBroker:
    return KafkaBroker(
        bootstrap,
        client_id=client_id,
        # Records leave through the kit's aiokafka producer (outbox relay, DLQ, ingest): it is
        # tuned (acks, idempotence, record size) and pipelines sends, where an awaited FastStream
        # publish measured ~800 msg/s (DESIGN §11). So the broker opens no producer of its own;
        # its publishers only declare what the service writes, for the AsyncAPI document.
        consumer_only=True,
        # Handlers take the batch the kit's decoder returns; no FastDepends per batch.
        apply_types=False,
        # Stopping waits for the batch in hand (applied and committed): up to the poll interval,
        # past which the group has given its partitions away anyway.
        graceful_timeout=graceful_timeout,
        # The batch's consumer span. FastStream starts it in a new trace (a batch has many
        # parents) and links only records with a `correlation_id` header, which ours do not
        # carry; so the kit adds a span per record whose parent is that record's traceparent
        # (consumer.py). Measured: ~2 us per record, under 1% of applying one.
        # No Prometheus middleware: it counts a batch as one message, while the kit's consumer
        # metrics (openlines_consumer_*, per record and consumer) are what dashboards read.
        middlewares=[KafkaTelemetryMiddleware()],
        logger=_LOG,
        # "Received" / "Processed" per batch: debug, not the service's info log.
        log_level=logging.DEBUG,
    )


def batch_of(kinds: Sequence[type[EventPayload]]) -> Any:
    """The type AsyncAPI documents a batch of these events as: a list of records, each the
    envelope of one of them (`list[Envelope[A] | Envelope[B] | ...]`)."""
    return list[Union[tuple(envelope_model(kind) for kind in kinds)]]  # type: ignore[misc]  # noqa: UP007
