"""Prometheus metrics shared by every service (default registry, served at /metrics)."""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

_children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}


def child(metric: M, *labels: str) -> M:
    """``metric.labels(*labels)``, remembered: ``labels()`` validates and locks on every call,
    a cost per request on hot paths. Only for bounded label sets (routes, statuses, channels)."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found  # type: ignore[return-value]


RELAY_PUBLISHED = Counter(
    "openlines_relay_published_total", "Outbox records published to Kafka", ["schema"]
)
RELAY_BACKLOG = Gauge(
    "openlines_relay_backlog", "Outbox records committed but not yet published", ["schema"]
)
RELAY_ERRORS = Counter("openlines_relay_errors_total", "Failed relay publish rounds", ["schema"])
RELAY_DEAD_LETTERS = Counter(
    "openlines_relay_dead_letters_total",
    "Outbox records that can never be published, moved to dead_letters (alert on any increase)",
    ["schema"],
)

CONSUMER_APPLIED = Counter(
    "openlines_consumer_applied_total", "Records applied by a consumer", ["consumer", "topic"]
)
CONSUMER_CONFLICTS = Counter(
    "openlines_consumer_conflict_retries_total",
    "Batches rolled back by Postgres for a deadlock or serialization failure, then retried",
    ["consumer"],
)
CONSUMER_SKIPPED = Counter(
    "openlines_consumer_skipped_total",
    "Records of event types the consumer does not act on, acknowledged without a transaction",
    ["consumer", "topic"],
)
CONSUMER_DUPLICATES = Counter(
    "openlines_consumer_duplicates_total",
    "Redelivered records skipped because they were already applied",
    ["consumer", "topic"],
)
CONSUMER_RETRIES = Counter(
    "openlines_consumer_retries_total",
    "Handler attempts that failed and were retried",
    ["consumer", "topic"],
)
CONSUMER_DLQ = Counter(
    "openlines_consumer_dlq_total", "Records sent to a dead-letter topic", ["consumer", "topic"]
)
CONSUMER_LAG = Gauge(
    "openlines_consumer_lag", "Records behind the partition end", ["consumer", "topic", "partition"]
)
CONSUMER_POSITION = Gauge(
    "openlines_consumer_committed_offset",
    "Last committed offset",
    ["consumer", "topic", "partition"],
)
CONSUMER_APPLY_SECONDS = Histogram(
    "openlines_consumer_batch_seconds", "Time to apply and commit one batch", ["consumer"]
)

TIMERS_FIRED = Counter("openlines_timers_fired_total", "Durable timers fired", ["timer"])
TIMERS_FAILED = Counter(
    "openlines_timers_failed_total", "Durable timer handler failures", ["timer"]
)

HTTP_REQUESTS = Counter(
    "openlines_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "openlines_http_request_seconds", "HTTP request latency", ["method", "route"]
)
