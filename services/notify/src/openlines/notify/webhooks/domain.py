"""Webhooks free of I/O: which events reach a subscription, in which order, what a receiver's
answer means and when a delivery is tried again."""

from __future__ import annotations

import email.utils
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from openlines.events.envelope import Envelope, EventPayload
from openlines.events.lines import LinesConfig
from openlines.events.topics import CRM, DIALOGS, INBOUND, OUTBOUND, ROUTING, TOPICS
from openlines.kit.backoff import RetryPolicy

ALL_EVENTS = "*"

# Every public topic (the commands topic is dialogs' inbox, not an announcement).
WEBHOOK_TOPICS = (INBOUND, DIALOGS, ROUTING, CRM, OUTBOUND)
EVENT_TYPES: frozenset[str] = frozenset(
    kind.TYPE for topic in WEBHOOK_TOPICS for kind in TOPICS[topic].event_types
)
WEBHOOK_EVENT_CLASSES: tuple[type[EventPayload], ...] = tuple(
    dict.fromkeys(kind for topic in WEBHOOK_TOPICS for kind in TOPICS[topic].event_types)
)


# -- what reaches whom, in which order ---------------------------------------------------------


def order_key(envelope: Envelope) -> str:
    """Deliveries with the same key leave one at a time, in recording order: the dialog's id
    (its events come from several topics), else the stream (a customer, an operator)."""
    dialog_id = getattr(envelope.payload, "dialog_id", None)
    return str(dialog_id) if isinstance(dialog_id, uuid.UUID) else envelope.stream_id


@dataclass(frozen=True)
class LineHint:
    line_id: str | None
    """The line the event names; None: the dialog's line, as last recorded."""
    fallback: str | None = None
    """The line of the event's channel, when nothing else says (a dialog not recorded)."""
    moves_dialog: bool = False
    """`line_id` is the dialog's line from now on (opened, assigned, transferred...)."""


def line_hint(payload: EventPayload, lines: LinesConfig) -> LineHint:
    """What says which line an event belongs to (a subscription of some lines gets those)."""
    of_dialog = hasattr(payload, "dialog_id")
    for name in ("to_line_id", "line_id"):
        value = getattr(payload, name, None)
        if isinstance(value, str) and value:
            return LineHint(value, moves_dialog=of_dialog)
    channel_id = getattr(payload, "channel_id", None)
    found = lines.channel(channel_id) if isinstance(channel_id, str) else None
    channel_line = found[0].id if found else None
    # A dialog transferred to another line keeps its channel: the dialog's line comes first.
    return LineHint(None, fallback=channel_line) if of_dialog else LineHint(channel_line)


# -- the receiver's answer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    status: int
    retry_after: float | None = None
    """Seconds, from a Retry-After header (429, 503), when given."""


@dataclass(frozen=True)
class Unreachable:
    """No HTTP answer: refused, reset, timed out, an address not allowed."""

    error: str


Attempt = Answered | Unreachable


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Delivered:
    status: int


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: float
    error: str
    status: int | None


@dataclass(frozen=True)
class DeadLetter:
    """Failed for good: listed under `?status=failed`, redelivered by hand."""

    error: str
    status: int | None


@dataclass(frozen=True)
class Unsubscribe:
    """410 Gone: the receiver asks for no more; the subscription is disabled."""

    status: int


Decision = Delivered | RetryLater | DeadLetter | Unsubscribe


def decide(
    attempt: Attempt,
    attempts: int,
    remaining_seconds: float,
    policy: RetryPolicy,
    jitter: float,
) -> Decision:
    """After attempt number `attempts` (1-based): any 2xx delivers, 410 unsubscribes, anything
    else is tried again (as Stripe does: a receiver's bug gets fixed) while the next attempt
    falls within the retry window (`remaining_seconds` of it left)."""
    status = attempt.status if isinstance(attempt, Answered) else None
    if status is not None and 200 <= status < 300:
        return Delivered(status)
    if status == 410:
        return Unsubscribe(status)
    error = f"HTTP {status}" if isinstance(attempt, Answered) else attempt.error
    retry_after = attempt.retry_after if isinstance(attempt, Answered) else None
    delay = policy.delay(attempts, retry_after, jitter)
    if delay > remaining_seconds:
        return DeadLetter(f"gave up after {attempts} attempts: {error}", status)
    return RetryLater(delay, error, status)


# -- receivers ---------------------------------------------------------------------------------


class UrlRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def url_host(url: str) -> tuple[str, int]:
    """Host and port of a receiver's URL; only absolute http(s) URLs without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("invalid_url", "url: only http and https URLs are delivered to")
    if not parts.hostname:
        raise UrlRefused("invalid_url", "url: no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("invalid_url", "url: credentials in the URL are not allowed")
    if parts.fragment:
        raise UrlRefused("invalid_url", "url: a fragment is never sent")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_public(address: str) -> bool:
    """A globally routable unicast address: not private, loopback, link-local (cloud metadata),
    shared, reserved, multicast or unspecified, also when mapped into IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
