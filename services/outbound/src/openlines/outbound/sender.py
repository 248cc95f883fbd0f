"""The sender loop: claim due jobs, call the provider, record the outcome and its event.

Delivery is AT MOST ONCE, across failed calls and crashes alike. Each attempt is:
  1. claim: pending -> sending (attempts + 1), COMMIT;
  2. one provider call;
  3. in a new transaction: sent + MessageDispatched, failed + MessageDispatchFailed, or back to
     pending with a backoff, only when the provider cannot have the message (it answered
     429/5xx, or the request never left: connect error or connect timeout).
A call whose request left without a readable answer (read timeout, dropped connection) is
failed with `outcome_unknown`. A crash between 1 and 3 leaves the job in `sending`: the provider
may or may not have the message, so it is never called again for it. When the claim is older
than the lease, the job is failed with `outcome_unknown_after_restart`. Either way the operator
sees a failed message instead of the customer a possible duplicate. The lease (not a restart
hook) decides, because with several replicas a job in `sending` may belong to a live sender;
the lease is longer than any single call. (Edits and deletions are jobs too, but applying one
twice does no harm, so they are tried again instead: see `domain.decide`.)
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

import aiohttp
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import MessageDispatched, MessageDispatchFailed
from openlines.events.envelope import Envelope, EventPayload, deterministic_event_id
from openlines.events.lines import Channel, LinesConfig
from openlines.events.topics import OUTBOUND
from openlines.kit.claimloop import ClaimLoop
from openlines.kit.db.retry import is_retryable
from openlines.kit.log import get_logger
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.telemetry import context_from_http, tracer
from openlines.outbound import jobs
from openlines.outbound.domain import (
    NOT_SENT,
    OUTCOME_UNKNOWN,
    OUTCOME_UNKNOWN_AFTER_RESTART,
    ChannelPacer,
    Decision,
    Delete,
    Dispatched,
    GiveUp,
    Provider,
    ProviderOutcome,
    RetryLater,
    RetryPolicy,
    Transient,
    change_of,
    decide,
    outgoing,
    precheck,
)
from openlines.outbound.settings import OutboundSettings

log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SENDS = Counter(
    "openlines_outbound_sends_total",
    "Send attempts by outcome (sent, retry, failed, unknown)",
    ["channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "openlines_outbound_send_seconds", "Duration of one provider call", ["channel"]
)

# Time kept back from the lease for recording the outcome after a call.
_LEASE_MARGIN_SECONDS = 1.0
_LEASE_MARGIN_SHARE = 0.25


def outcome_event_id(message_id: UUID) -> UUID:
    """One outcome per message, so downstream dedupes even a replayed outbox."""
    return deterministic_event_id("outbound", "outcome", str(message_id))


class Sender:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: OutboundSettings,
        lines: LinesConfig,
        providers: Mapping[str, Provider],
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.lines = lines
        self.providers = providers  # by channel type
        self.policy = RetryPolicy(
            max_attempts=settings.send_max_attempts,
            base_seconds=settings.send_backoff_base_seconds,
            max_seconds=settings.send_backoff_max_seconds,
            retry_after_cap_seconds=settings.send_retry_after_cap_seconds,
            rate_limited_attempts=settings.send_rate_limited_attempts,
        )
        self.pacer = ChannelPacer(settings.channel_rate_per_second)
        self.claims = ClaimLoop(
            self._claim,
            poll_seconds=settings.sender_poll_seconds,
            waiting_message="sender waiting for the database",
            crashed_message="send task crashed",
        )
        self._next_expiry_check = 0.0

    def wake(self) -> None:
        """New jobs were recorded: look now rather than at the next poll."""
        self.claims.wake()

    @property
    def last_round_at(self) -> float:
        """When the loop last looked for work (the liveness check)."""
        return self.claims.last_round_at

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # Cancelled (or crashed): like a killed process, claimed jobs stay in `sending`; the
        # lease turns them into outcome-unknown failures. A graceful stop records the outcome
        # of the calls in flight.
        async with aiohttp.ClientSession() as http:
            await self.claims.run(stop, functools.partial(self._attempt, http))

    async def _claim(self) -> list[jobs.ClaimedJob]:
        await self._expire_stale_claims()
        free = self.settings.sender_max_in_flight - len(self.claims.in_flight)
        if free <= 0:
            return []
        async with self.runtime.engine.begin() as conn:
            return await jobs.claim(conn, free)

    async def _expire_stale_claims(self) -> None:
        now = time.monotonic()
        if now < self._next_expiry_check:
            return
        self._next_expiry_check = now + min(self.settings.send_lease_seconds / 4, 5.0)
        async with self.runtime.engine.begin() as conn:
            expired = await jobs.expire_leases(
                conn, self.settings.send_lease_seconds, OUTCOME_UNKNOWN_AFTER_RESTART
            )
            for job in expired:
                await self._emit(conn, job, _failed(job, OUTCOME_UNKNOWN_AFTER_RESTART))
        for job in expired:
            SENDS.labels(job.channel_id, "unknown").inc()
            log.warning(
                "send outcome unknown: not sending again",
                message_id=str(job.message_id),
                channel=job.channel_id,
                attempts=job.attempts,
            )

    # -- one attempt --------------------------------------------------------------------------

    async def _attempt(self, http: aiohttp.ClientSession, claimed: jobs.ClaimedJob) -> None:
        # The sender works outside any consumer span: the reply's trace, stored with the job,
        # continues here, so the provider call and the outcome event belong to it.
        carrier = {"traceparent": claimed.traceparent} if claimed.traceparent else {}
        with tracer().start_as_current_span(
            "outbound send",
            context=context_from_http(carrier),
            kind=SpanKind.CLIENT,
            attributes={"openlines.channel_id": claimed.job.channel_id},
        ):
            await self._send(http, claimed)

    async def _send(self, http: aiohttp.ClientSession, claimed: jobs.ClaimedJob) -> None:
        claimed_at = time.monotonic()
        job = claimed.job
        channel_entry = self.lines.channel(job.channel_id)
        channel = channel_entry[1] if channel_entry else None
        problem = precheck(job, channel, self.providers)
        if problem is not None or channel is None:
            await self._settle(claimed, GiveUp(problem or "unknown_channel"))
            return
        if job.change is not None and claimed.target_provider_id is None:
            await self._settle(claimed, GiveUp(NOT_SENT))
            return
        wait = self.pacer.reserve(channel.id, time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        remaining = (
            self.settings.send_lease_seconds
            - (time.monotonic() - claimed_at)
            - min(_LEASE_MARGIN_SECONDS, self.settings.send_lease_seconds * _LEASE_MARGIN_SHARE)
        )
        timeout = min(self.settings.send_timeout_seconds, remaining)
        if timeout <= 0:
            await self._with_database(jobs.release, claimed)
            return
        started = time.perf_counter()
        outcome = await self._call(http, channel, claimed, timeout)
        SEND_SECONDS.labels(channel.id).observe(time.perf_counter() - started)
        if isinstance(outcome, Transient) and outcome.retry_after is not None:
            # The same wait the job itself gets (the policy caps it); no jitter on it.
            wait = self.policy.delay(claimed.attempt, outcome.retry_after, jitter=0.0)
            self.pacer.hold(channel.id, time.monotonic() + wait)
        decision = decide(
            outcome,
            claimed.attempt,
            self.policy,
            random.random(),
            idempotent=job.change is not None,
        )
        await self._settle(claimed, decision)

    async def _call(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        claimed: jobs.ClaimedJob,
        timeout: float,
    ) -> ProviderOutcome:
        """The job's one provider call: send the message, or edit or delete it."""
        provider = self.providers[channel.type]
        limits = {"timeout": timeout, "connect_timeout": self.settings.send_connect_timeout_seconds}
        job = claimed.job
        if job.change is None:
            return await provider.send(
                http, channel, outgoing(job, claimed.reply_to_provider_id), **limits
            )
        assert claimed.target_provider_id is not None  # checked before
        change = change_of(job, claimed.target_provider_id)
        if isinstance(change, Delete):
            return await provider.delete(http, channel, change, **limits)
        return await provider.edit(http, channel, change, **limits)

    async def _settle(self, claimed: jobs.ClaimedJob, decision: Decision) -> None:
        job = claimed.job
        if isinstance(decision, RetryLater):
            SENDS.labels(job.channel_id, "retry").inc()
            log.info(
                "send will be retried",
                message_id=str(job.message_id),
                attempt=claimed.attempt,
                delay=round(decision.delay_seconds, 3),
                reason=decision.reason,
            )
            await self._with_database(
                jobs.retry_later, claimed, decision.delay_seconds, decision.reason
            )
            return
        settled = await self._with_database(self._record_final, claimed, decision)
        outcome = _metric_outcome(decision)
        if settled is None:
            # The lease ran out meanwhile and the job was already reported outcome-unknown.
            log.error(
                "claim lost before the outcome was recorded",
                message_id=str(job.message_id),
                outcome=outcome,
            )
            return
        SENDS.labels(job.channel_id, outcome).inc()
        if isinstance(decision, GiveUp):
            log.warning(
                "send failed" if outcome == "failed" else "send outcome unknown: not sending again",
                message_id=str(job.message_id),
                reason=decision.reason,
                detail=decision.detail,
            )

    async def _record_final(
        self, conn: AsyncConnection, claimed: jobs.ClaimedJob, decision: Decision
    ) -> jobs.SettledJob | None:
        if isinstance(decision, Dispatched):
            settled = await jobs.mark_sent(conn, claimed, decision.provider_message_id)
            if settled is None:
                return None
            if settled.change is None:
                await jobs.remember_provider_id(
                    conn, settled.message_id, decision.provider_message_id
                )
            await self._emit(
                conn,
                settled,
                MessageDispatched(
                    dialog_id=settled.dialog_id,
                    message_id=_message_of(settled),
                    channel_id=settled.channel_id,
                    provider_message_id=decision.provider_message_id,
                    attempts=settled.attempts,
                    change=settled.change,
                ),
            )
            return settled
        assert isinstance(decision, GiveUp)
        settled = await jobs.mark_failed(conn, claimed, decision.reason, decision.detail)
        if settled is not None:
            await self._emit(conn, settled, _failed(settled, decision.reason))
        return settled

    async def _emit(
        self, conn: AsyncConnection, job: jobs.SettledJob, payload: EventPayload
    ) -> None:
        envelope = Envelope.new(
            payload,
            stream_id=str(job.dialog_id),
            stream_version=0,
            producer=self.settings.service_name,
            event_id=outcome_event_id(job.message_id),
            correlation_id=job.correlation_id or job.source_event_id,
            causation_id=job.source_event_id,
        )
        # Last in the transaction: the outbox lock is held until commit.
        await self.runtime.event_store.outbox.enqueue(conn, OUTBOUND, [envelope])

    async def _with_database(
        self,
        write: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `write(conn, *args)` in a transaction, riding out a short database outage.

        Gives up when the lease would have run out anyway: the job is then reported as
        outcome unknown, which is the truth from the database's point of view.
        """
        deadline = time.monotonic() + self.settings.send_lease_seconds
        delay = 0.2
        while True:
            try:
                async with self.runtime.engine.begin() as conn:
                    return await write(conn, *args, **kwargs)
            except Exception as exc:
                if not is_retryable(exc) or time.monotonic() > deadline:
                    raise
                log.warning("cannot record send outcome yet", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _metric_outcome(decision: Decision) -> str:
    if isinstance(decision, Dispatched):
        return "sent"
    return "unknown" if decision.reason == OUTCOME_UNKNOWN else "failed"


def _message_of(job: jobs.SettledJob) -> UUID:
    """The message an outcome is about: the one sent, or the one edited or deleted."""
    return job.target_message_id if job.target_message_id is not None else job.message_id


def _failed(job: jobs.SettledJob, reason: str) -> MessageDispatchFailed:
    return MessageDispatchFailed(
        dialog_id=job.dialog_id,
        message_id=_message_of(job),
        channel_id=job.channel_id,
        reason=reason,
        attempts=max(job.attempts, 1),
        retryable=False,
        change=job.change,
    )
