"""Exactly once towards the customer, against the sandbox provider and its fault injection.

Only what certainly did not reach the provider is retried (a refused connection, 429, 5xx). A
request that left without a readable answer (an answer after the timeout, a dropped connection)
is failed as `outcome_unknown` and never sent again: the sandbox must hold it exactly once.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from openlines.events.catalog import MessageDispatched, MessageDispatchFailed
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.testing.service import running
from openlines.kit.testing.waiting import eventually
from openlines.outbound import jobs
from openlines.outbound.app import build_service
from openlines.outbound.settings import OutboundSettings

from .outbound_support import CHANNEL, Dialogs, OutboundTopic, SandboxServer, SendOne, reply_event

Settings = Callable[..., OutboundSettings]


async def _until(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 30.0) -> None:
    await eventually(condition, timeout=timeout)


async def _job(runtime: ServiceRuntime, message_id: Any) -> dict[str, object]:
    async with runtime.engine.connect() as conn:
        row = await jobs.job_state(conn, message_id)
    assert row is not None
    return row


async def test_an_answer_after_the_timeout_is_outcome_unknown_and_never_sent_again(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    # The provider takes the message but answers after outbound stopped waiting.
    await sandbox.fault(status=200, delay_seconds=3)
    slow = reply_event("answered too late")
    marker = reply_event("next in the conversation")  # same chat: goes out after `slow` settled
    runtime = build_service(make_settings(send_timeout_seconds=1.0))
    async with running(runtime):
        await dialogs.publish(slow)
        outcome = await outbound_topic.outcome_of(slow.payload.message_id)
        assert isinstance(outcome.payload, MessageDispatchFailed)
        assert outcome.payload.reason == "outcome_unknown"
        assert outcome.payload.attempts == 1
        row = await _job(runtime, slow.payload.message_id)
        assert row["state"] == "failed" and row["failure_reason"] == "outcome_unknown"
        assert "no answer in time" in str(row["last_error"])
        # The provider shows it once its delay is over...
        await _until(lambda: "answered too late" in sandbox.texts())
        # ...and the next reply of the conversation, which waits for it, finds no resend.
        await dialogs.publish(marker)
        after = await outbound_topic.outcome_of(marker.payload.message_id)

    assert isinstance(after.payload, MessageDispatched)
    assert sandbox.texts() == ["answered too late", "next in the conversation"]
    assert len(outbound_topic.outcomes_of(slow.payload.message_id)) == 1


async def test_a_connection_dropped_after_sending_is_outcome_unknown_and_never_sent_again(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    await sandbox.fault(status=200, disconnect=True)  # taken, the answer lost on the way back
    lost = reply_event("answer lost")
    marker = reply_event("next in the conversation")
    runtime = build_service(make_settings())
    async with running(runtime):
        await dialogs.publish(lost, marker)
        outcome = await outbound_topic.outcome_of(lost.payload.message_id)
        await outbound_topic.outcome_of(marker.payload.message_id)
        row = await _job(runtime, lost.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert outcome.payload.reason == "outcome_unknown"
    assert "ServerDisconnectedError" in str(row["last_error"])
    assert sandbox.texts() == ["answer lost", "next in the conversation"]


async def test_a_refused_connection_is_retried_and_the_message_sent_once(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    await sandbox.stop()  # nothing listens: the request cannot leave
    appended = reply_event("once the provider is back")
    runtime = build_service(make_settings(send_max_attempts=1000))
    async with running(runtime):
        await dialogs.publish(appended)

        async def refused_once() -> bool:
            async with runtime.engine.connect() as conn:
                row = await jobs.job_state(conn, appended.payload.message_id)
            return row is not None and "ClientConnectorError" in str(row["last_error"])

        await _until(refused_once)
        await sandbox.start()
        outcome = await outbound_topic.outcome_of(appended.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts >= 2
    assert sandbox.texts() == ["once the provider is back"]


@contextlib.contextmanager
def _unanswered_port(port: int) -> Iterator[None]:
    """A listener whose accept queue is full: Linux drops further SYNs, so a connect to it
    hangs until the client's connect timeout (the request never leaves)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_connect_timeout_is_retried_and_the_message_sent_once(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    await sandbox.stop()
    appended = reply_event("after a connect timeout")
    runtime = build_service(make_settings(send_timeout_seconds=2.0, send_max_attempts=1000))
    async with running(runtime):
        with _unanswered_port(sandbox.port):
            await dialogs.publish(appended)

            async def timed_out_connecting() -> bool:
                async with runtime.engine.connect() as conn:
                    row = await jobs.job_state(conn, appended.payload.message_id)
                return row is not None and row["last_error"] == "connect timeout"

            await _until(timed_out_connecting)
        await sandbox.start()
        outcome = await outbound_topic.outcome_of(appended.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatched)
    assert sandbox.texts() == ["after a connect timeout"]


async def test_5xx_answers_are_retried_and_the_message_sent_once(
    send_one: SendOne,
    sandbox: SandboxServer,
) -> None:
    await sandbox.fault(status=500)
    await sandbox.fault(status=503)
    appended = reply_event("after two 5xx")
    outcome = await send_one(appended)

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts == 3
    assert sandbox.rejected() == 2
    assert sandbox.texts() == ["after two 5xx"]


async def test_429_is_retried_after_retry_after_and_the_message_sent_once(
    send_one: SendOne,
    sandbox: SandboxServer,
) -> None:
    await sandbox.fault(status=429, retry_after=1)
    appended = reply_event("after the flood wait")
    published_at = time.time()
    outcome = await send_one(appended)

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts == 2
    assert sandbox.rejected() == 1
    [sent] = sandbox.sandbox.mailbox(CHANNEL).sent
    assert sent.text == "after the flood wait"
    # retry_after honoured: a lower bound only (never "faster than").
    assert sent.at - published_at >= 1.0
