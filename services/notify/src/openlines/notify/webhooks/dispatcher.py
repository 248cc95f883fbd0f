"""The dispatcher loop: claim due deliveries, POST each to its receiver, record the outcome.

Delivery is AT LEAST ONCE. Each attempt is:
  1. claim: pending -> delivering (attempts + 1), COMMIT;
  2. one signed POST, bounded by `webhook_timeout_seconds`, redirects not followed;
  3. in a new transaction: delivered; pending again after a backoff (any other answer, or
     none); failed once the retry window is over (the dead-letter list); or, on 410 Gone,
     failed and the subscription disabled.
A crash between 1 and 3 leaves the delivery in `delivering`; after the lease it is pending
again and sent once more: the receiver dedupes by `X-Openlines-Delivery` (the event id).

Isolation: each subscription has at most `webhook_max_in_flight_per_subscription` calls in
flight, out of `webhook_max_in_flight`, and each call its timeout; the claim picks the oldest
due delivery of each subscription first, so a slow or dead receiver only delays its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from datetime import UTC, datetime

import aiohttp
from prometheus_client import Counter, Histogram

from openlines.events.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from openlines.kit.backoff import RetryPolicy
from openlines.kit.claimloop import ClaimLoop
from openlines.kit.db.retry import is_retryable
from openlines.kit.log import get_logger
from openlines.kit.runtime import ServiceRuntime
from openlines.notify.settings import NotifySettings
from openlines.notify.webhooks import store
from openlines.notify.webhooks.addresses import ReceiverAddresses
from openlines.notify.webhooks.domain import (
    Answered,
    Attempt,
    DeadLetter,
    Decision,
    Delivered,
    RetryLater,
    Unreachable,
    Unsubscribe,
    decide,
    retry_after_seconds,
)

log = get_logger(__name__)

ATTEMPTS = Counter(
    "openlines_webhook_attempts_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, gone)",
    ["outcome"],
)
SECONDS = Histogram("openlines_webhook_seconds", "Duration of one webhook POST")

USER_AGENT = "openlines-webhooks/1"


class Dispatcher:
    def __init__(self, runtime: ServiceRuntime, settings: NotifySettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.addresses = ReceiverAddresses(settings.webhook_allow_private_addresses)
        self.policy = RetryPolicy(
            base_seconds=settings.webhook_backoff_base_seconds,
            max_seconds=settings.webhook_backoff_max_seconds,
            retry_after_cap_seconds=settings.webhook_backoff_max_seconds,
        )
        self.claims = ClaimLoop(
            self._claim,
            poll_seconds=settings.webhook_poll_seconds,
            waiting_message="webhook dispatcher waiting for the database",
            crashed_message="webhook delivery task crashed",
        )
        self._next_requeue = 0.0

    def wake(self) -> None:
        self.claims.wake()

    @property
    def last_round_at(self) -> float:
        """When the loop last looked for work (the liveness check)."""
        return self.claims.last_round_at

    async def run(self, stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(
            resolver=self.addresses.resolver(),
            limit=self.settings.webhook_max_in_flight,
            # One receiver's pool never starves another's.
            limit_per_host=self.settings.webhook_max_in_flight_per_subscription,
        )
        async with aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}
        ) as http:
            # Cancelled: like a killed process, claimed deliveries stay `delivering` until the
            # lease.
            await self.claims.run(stop, functools.partial(self._deliver, http))

    async def _claim(self) -> list[store.Claimed]:
        await self._requeue_expired()
        free = self.settings.webhook_max_in_flight - len(self.claims.in_flight)
        if free <= 0:
            return []
        async with self.runtime.engine.begin() as conn:
            return await store.claim(
                conn, free, self.settings.webhook_max_in_flight_per_subscription
            )

    async def _requeue_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_requeue:
            return
        lease = self.settings.webhook_lease_seconds
        self._next_requeue = now + min(lease / 4, 5.0)
        async with self.runtime.engine.begin() as conn:
            count = await store.requeue_expired(conn, lease)
            await store.forget_delivered(conn, self.settings.webhook_keep_delivered_seconds)
        if count:
            log.warning("webhook deliveries of a lost dispatcher queued again", count=count)

    # -- one attempt ------------------------------------------------------------------------

    async def _deliver(self, http: aiohttp.ClientSession, claimed: store.Claimed) -> None:
        started = time.monotonic()
        attempt = await self._post(http, claimed)
        SECONDS.observe(time.monotonic() - started)
        remaining = claimed.remaining_seconds - (time.monotonic() - started)
        decision = decide(attempt, claimed.attempt, remaining, self.policy, random.random())
        await self._with_database(claimed, decision)

    async def _post(self, http: aiohttp.ClientSession, claimed: store.Claimed) -> Attempt:
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: claimed.event_type,
            DELIVERY_HEADER: str(claimed.event_id),
            SIGNATURE_HEADER: sign(claimed.secret, claimed.body),
        }
        timeout = aiohttp.ClientTimeout(
            total=self.settings.webhook_timeout_seconds,
            connect=self.settings.webhook_connect_timeout_seconds,
        )
        try:
            self.addresses.check_literal(claimed.url)
            async with http.post(
                claimed.url,
                data=claimed.body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                # The body is not ours to keep: read a little so the connection can be reused.
                with contextlib.suppress(Exception):
                    await response.content.read(1024)
                retry_after = retry_after_seconds(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                return Answered(response.status, retry_after)
        except TimeoutError:
            return Unreachable(f"no answer within {self.settings.webhook_timeout_seconds:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Unreachable(f"{type(exc).__name__}: {exc}"[:500])

    async def _settle(self, claimed: store.Claimed, decision: Decision) -> str:
        async with self.runtime.engine.begin() as conn:
            if isinstance(decision, Delivered):
                await store.mark_delivered(conn, claimed, decision.status)
                return "delivered"
            if isinstance(decision, RetryLater):
                await store.retry_later(
                    conn, claimed, decision.delay_seconds, decision.error, decision.status
                )
                return "retry"
            if isinstance(decision, Unsubscribe):
                await store.mark_failed(conn, claimed, "410 Gone: subscription disabled", 410)
                await store.disable(conn, claimed.subscription_id, "gone")
                return "gone"
            assert isinstance(decision, DeadLetter)
            await store.mark_failed(conn, claimed, decision.error, decision.status)
            return "failed"

    async def _with_database(self, claimed: store.Claimed, decision: Decision) -> None:
        """Record the outcome, riding out a short database outage (past the lease the
        delivery is queued again anyway: at least once)."""
        deadline = time.monotonic() + self.settings.webhook_lease_seconds
        delay = 0.2
        while True:
            try:
                outcome = await self._settle(claimed, decision)
                break
            except Exception as exc:
                if not is_retryable(exc) or time.monotonic() > deadline:
                    raise
                log.warning("cannot record a webhook outcome yet", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        ATTEMPTS.labels(outcome).inc()
        if outcome != "delivered":
            log.info(
                "webhook not delivered",
                delivery_id=str(claimed.id),
                subscription_id=str(claimed.subscription_id),
                attempt=claimed.attempt,
                outcome=outcome,
                decision=repr(decision),
            )
