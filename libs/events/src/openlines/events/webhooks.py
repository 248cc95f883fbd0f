"""Signed webhooks: what notify sends and what a receiver checks. Standard library only.

Each delivery is a POST of the event envelope (the same JSON bytes as the Kafka record) with

- `X-Openlines-Event`: the event's type;
- `X-Openlines-Delivery`: the event id; a receiver dedupes by it (delivery is at least once);
- `X-Openlines-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed by the
  subscription's secret (Stripe's scheme). Signing the time with the body lets a receiver
  refuse a replayed old request. Notify sends one `v1=`; `verify` accepts any of several, so
  that a receiver stays correct if a rotation ever signs with two secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_HEADER = "X-Openlines-Event"
DELIVERY_HEADER = "X-Openlines-Delivery"
SIGNATURE_HEADER = "X-Openlines-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request is not signed by the secret (or is too old)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Openlines-Signature` value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check an `X-Openlines-Signature` header against the raw body; returns its timestamp.
    Raises `SignatureError` when it is missing, malformed, wrong, or older than the tolerance
    (a replay)."""
    if not header:
        raise SignatureError("no signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("signature timestamp outside the tolerance")
    return timestamp
