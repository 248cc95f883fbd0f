"""How long to wait before trying a call again: exponential backoff with jitter, and the
other side's own "retry after" honoured (capped). Pure.

One policy for every durable retry of the suite that calls out: outbound's sends to providers
and notify's webhook deliveries. Each caller decides *whether* to try again (outbound counts
attempts, webhooks count time since the first attempt); this decides *when*.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    retry_after_cap_seconds: float = 300.0
    rate_limited_attempts: int = 20
    """Attempts beyond `max_attempts` allowed while the provider answers "retry after": its
    flood control says when to come back, so waiting it out is no failure of ours."""

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """Seconds before attempt `attempt + 1`; `jitter` is uniform in [0, 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap_seconds)
        # 2 ** attempt overflows a float past ~1024 attempts: cap the exponent first.
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempt - 1, 64))
        # "Equal jitter": never less than half the backoff, spread over the other half.
        return ceiling / 2 + ceiling / 2 * jitter
