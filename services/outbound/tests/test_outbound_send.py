"""Outbound end to end on the real broker and Postgres, against a fake provider on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable

from openlines.events.catalog import Button, Direction, MessageDispatched, MessageDispatchFailed
from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.kit.testing.kafka import read_topic
from openlines.kit.testing.service import running
from openlines.outbound import jobs
from openlines.outbound.app import build_service
from openlines.outbound.settings import OutboundSettings

from .outbound_support import (
    CHANNEL,
    SEND_PATH,
    Dialogs,
    OutboundTopic,
    Provider,
    SendOne,
    error,
    ok,
    reply_event,
)

Settings = Callable[..., OutboundSettings]


async def test_reply_is_sent_once_and_dispatched_with_the_provider_id(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    appended = reply_event("Hello from Ann", chat="42")
    runtime = build_service(make_settings())
    async with running(runtime):
        await dialogs.publish(appended)
        outcome = await outbound_topic.outcome_of(appended.payload.message_id)
        async with runtime.engine.connect() as conn:
            row = await jobs.job_state(conn, appended.payload.message_id)

    assert len(provider.requests) == 1
    request = provider.requests[0]
    assert request["path"] == SEND_PATH
    assert request["json"] == {"chat_id": 42, "text": "Hello from Ann"}
    assert "traceparent" in {k.lower() for k in request["headers"]}

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.provider_message_id == "1000"
    assert outcome.payload.attempts == 1
    assert outcome.payload.dialog_id == appended.payload.dialog_id
    assert outcome.payload.channel_id == CHANNEL
    assert outcome.stream_id == str(appended.payload.dialog_id)
    assert outcome.causation_id == appended.event_id
    assert outcome.correlation_id == appended.correlation_id
    assert outbound_topic.keys[0] == str(appended.payload.dialog_id).encode()
    assert row is not None and row["state"] == "sent" and row["provider_message_id"] == "1000"


async def test_429_is_retried_after_retry_after_and_delivered_exactly_once(
    send_one: SendOne,
    provider: Provider,
    outbound_topic: OutboundTopic,
) -> None:
    provider.script = [error(429, "Too Many Requests: retry after 1", retry_after=1), ok()]
    appended = reply_event("after the limit")
    outcome = await send_one(appended)

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts == 2
    assert provider.texts() == ["after the limit", "after the limit"]
    # retry_after was honoured (a lower bound only: never "faster than").
    assert provider.requests[1]["at"] - provider.requests[0]["at"] >= 0.9
    assert len(outbound_topic.outcomes_of(appended.payload.message_id)) == 1


async def test_5xx_twice_then_200_delivers_once_on_the_third_attempt(
    send_one: SendOne,
    provider: Provider,
) -> None:
    provider.script = [error(500, "Internal Server Error"), error(502, "Bad Gateway"), ok()]
    appended = reply_event("third time lucky")
    outcome = await send_one(appended)

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts == 3
    assert len(provider.requests) == 3


async def test_persistent_5xx_gives_up_after_the_bound(
    send_one: SendOne,
    provider: Provider,
) -> None:
    provider.script = [error(500, "Internal Server Error") for _ in range(10)]
    appended = reply_event("never arrives")
    outcome = await send_one(appended, send_max_attempts=3)

    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert outcome.payload.attempts == 3
    assert outcome.payload.retryable is False
    assert outcome.payload.reason == "gave up after 3 attempts: Internal Server Error"
    assert len(provider.requests) == 3


async def test_4xx_fails_at_once_without_retries(
    send_one: SendOne,
    provider: Provider,
) -> None:
    provider.script = [error(400, "Bad Request: chat not found"), ok()]
    appended = reply_event("to nowhere")
    outcome = await send_one(appended)

    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert outcome.payload.reason == "Bad Request: chat not found"
    assert outcome.payload.attempts == 1
    assert outcome.payload.retryable is False
    assert len(provider.requests) == 1


async def test_a_redelivered_message_is_sent_once(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    appended = reply_event("only once")
    # The same event again, and the same message under a new event id (a re-emitting writer).
    same_message_new_event = Envelope.new(
        appended.payload, stream_id=appended.stream_id, stream_version=2, producer="dialogs"
    )
    marker = reply_event("marker", chat="43")
    async with running(build_service(make_settings())):
        await dialogs.publish(appended, appended, same_message_new_event)
        await outbound_topic.outcome_of(appended.payload.message_id)
        await dialogs.publish(appended, marker)
        await outbound_topic.outcome_of(marker.payload.message_id)

    assert provider.texts().count("only once") == 1
    assert len(outbound_topic.outcomes_of(appended.payload.message_id)) == 1


async def test_customer_messages_notes_and_system_messages_are_not_sent(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    others = [
        reply_event("from the customer", direction=Direction.IN, external_message_id="7"),
        reply_event("staff only", direction=Direction.NOTE),
        reply_event("Ann took the dialog", direction=Direction.SYSTEM),
    ]
    marker = reply_event("the only reply")
    async with running(build_service(make_settings())):
        await dialogs.publish(*others, marker)
        await outbound_topic.outcome_of(marker.payload.message_id)
        await outbound_topic.wait_for(lambda seen: len(seen) >= 1)

    assert provider.texts() == ["the only reply"]
    assert [e.payload.message_id for e in outbound_topic.seen] == [marker.payload.message_id]


async def test_a_reply_quotes_the_customer_message_by_its_provider_id(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    question = reply_event("what time is it?", direction=Direction.IN, external_message_id="77")
    answer = reply_event(
        "noon", dialog_id=question.payload.dialog_id, reply_to=question.payload.message_id
    )
    async with running(build_service(make_settings())):
        await dialogs.publish(question, answer)
        await outbound_topic.outcome_of(answer.payload.message_id)

    assert provider.requests[0]["json"]["reply_to_message_id"] == 77


async def test_replies_of_one_conversation_go_out_in_order(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    provider.script = [error(429, "Too Many Requests: retry after 1", retry_after=1)]
    first, second = reply_event("first"), reply_event("second")
    async with running(build_service(make_settings())):
        await dialogs.publish(first, second)
        await outbound_topic.outcome_of(second.payload.message_id)

    # The second waited for the first's retry instead of overtaking it.
    assert provider.texts() == ["first", "first", "second"]


async def test_unknown_channel_and_unsupported_channel_fail_without_a_call(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    unknown = reply_event("lost", channel="tg-gone")
    viber = reply_event("not yet", channel="vb-test")
    async with running(build_service(make_settings())):
        await dialogs.publish(unknown, viber)
        lost = await outbound_topic.outcome_of(unknown.payload.message_id)
        unsupported = await outbound_topic.outcome_of(viber.payload.message_id)

    assert isinstance(lost.payload, MessageDispatchFailed)
    assert lost.payload.reason == "unknown_channel"
    assert isinstance(unsupported.payload, MessageDispatchFailed)
    assert unsupported.payload.reason == "unsupported_channel_type"
    assert provider.requests == []


async def test_the_replys_trace_reaches_the_provider_and_the_outcome(
    make_settings: Callable[..., OutboundSettings],
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    # The send happens later, in the sender's own task: the trace is carried by the job.
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    reply = reply_event("traced")
    record = encode(reply, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    async with running(build_service(make_settings())):
        await dialogs.producer.send_and_wait(
            dialogs.topic, record.value, key=record.key, headers=record.headers
        )
        await outbound_topic.outcome_of(reply.payload.message_id)
        [outcome] = await read_topic(outbound_topic.bootstrap, outbound_topic.topic, 1)
    sent = {k.lower(): v for k, v in provider.requests[0]["headers"].items()}
    assert trace_id in sent.get("traceparent", "")
    carried = next((v.decode() for k, v in outcome.headers if k == "traceparent"), "")
    assert trace_id in carried


async def test_a_message_with_buttons_is_sent_with_its_inline_keyboard(
    make_settings: Settings,
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    """The rating request: its buttons travel through the job to Telegram's reply_markup."""
    appended = reply_event("Rate us?", chat="43")
    buttons = (Button(text="1", data="csat:x:1"), Button(text="2", data="csat:x:2"))
    appended = appended.model_copy(
        update={"payload": appended.payload.model_copy(update={"buttons": buttons})}
    )
    async with running(build_service(make_settings())):
        await dialogs.publish(appended)
        outcome = await outbound_topic.outcome_of(appended.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatched)
    assert provider.requests[0]["json"] == {
        "chat_id": 43,
        "text": "Rate us?",
        "reply_markup": {
            "inline_keyboard": [
                [
                    {"text": "1", "callback_data": "csat:x:1"},
                    {"text": "2", "callback_data": "csat:x:2"},
                ]
            ]
        },
    }
