"""The pure outbound rules: provider answers, retry decisions, pacing, request bodies."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from openlines.events.catalog import Button, DeliveryStatus, Direction
from openlines.events.lines import Channel
from openlines.outbound.app import providers
from openlines.outbound.domain import (
    Accepted,
    ChannelPacer,
    Dispatched,
    GiveUp,
    Rejected,
    RetryLater,
    RetryPolicy,
    SendJob,
    Transient,
    Unknown,
    chat_id_of,
    classify_telegram,
    decide,
    outgoing,
    precheck,
    send_job_for,
    telegram_send_message,
)

from .outbound_support import reply_event

TELEGRAM = Channel(id="tg-x", type="telegram", token="t", api_base="http://x", max_text_length=10)


def _job(text: str | None = "hi", chat_id: str | None = "42") -> SendJob:
    return SendJob(
        message_id=uuid.uuid4(),
        dialog_id=uuid.uuid4(),
        channel_id="tg-x",
        conversation_key=f"tg-x:{chat_id}",
        chat_id=chat_id,
        text=text,
        reply_to=None,
        source_event_id=uuid.uuid4(),
        correlation_id=None,
    )


def test_classify_telegram_answers() -> None:
    ok = {"ok": True, "result": {"message_id": 5, "chat": {"id": 1}, "date": 0}}
    assert classify_telegram(200, ok) == Accepted("5")
    limited = {
        "ok": False,
        "error_code": 429,
        "description": "slow",
        "parameters": {"retry_after": 3},
    }
    assert classify_telegram(429, limited) == Transient("slow", retry_after=3.0)
    assert classify_telegram(429, None) == Transient("HTTP 429")
    assert classify_telegram(503, "not json") == Transient("HTTP 503")
    assert classify_telegram(403, {"description": "Forbidden: bot was blocked"}) == Rejected(
        "Forbidden: bot was blocked"
    )
    # A success we cannot read may still have been delivered: never retried.
    assert classify_telegram(200, {"ok": True}) == Unknown("unreadable provider answer (HTTP 200)")
    assert isinstance(classify_telegram(200, None), Unknown)


def test_decide_retries_transient_failures_up_to_the_bound() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1.0, max_seconds=8.0)
    assert decide(Accepted("9"), 1, policy, 0.5) == Dispatched("9")
    assert decide(Rejected("no"), 1, policy, 0.5) == GiveUp("no")
    retry = decide(Transient("boom"), 2, policy, 0.0)
    assert retry == RetryLater(1.0, "boom")  # half of 2 s with zero jitter
    assert decide(Transient("boom"), 3, policy, 0.5) == GiveUp("gave up after 3 attempts: boom")


def test_an_unknown_outcome_is_never_retried_whatever_the_attempt() -> None:
    policy = RetryPolicy(max_attempts=5)
    for attempt in (1, 2, 5):
        assert decide(Unknown("no answer in time: TimeoutError"), attempt, policy, 0.5) == GiveUp(
            "outcome_unknown", detail="no answer in time: TimeoutError"
        )


def test_flood_control_waits_do_not_use_up_the_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, rate_limited_attempts=2, retry_after_cap_seconds=60)
    flood = Transient("Too Many Requests", retry_after=5.0)
    assert decide(flood, 3, policy, 0.5) == RetryLater(5.0, "Too Many Requests")
    assert decide(flood, 4, policy, 0.5) == RetryLater(5.0, "Too Many Requests")
    assert decide(flood, 5, policy, 0.5) == GiveUp("gave up after 5 attempts: Too Many Requests")


def test_backoff_grows_is_jittered_and_capped_and_retry_after_is_honoured_up_to_a_cap() -> None:
    policy = RetryPolicy(base_seconds=0.5, max_seconds=4.0, retry_after_cap_seconds=10.0)
    assert [policy.delay(n, None, 0.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [policy.delay(n, None, 0.999) for n in (1, 5)] == pytest.approx([0.5, 4.0], abs=0.01)
    assert policy.delay(1, 3, 0.7) == 3
    assert policy.delay(1, 3600, 0.7) == 10.0


def test_only_operator_replies_become_jobs() -> None:
    for direction in (Direction.IN, Direction.NOTE, Direction.SYSTEM):
        env = reply_event("x", direction=direction)
        assert send_job_for(env.payload, event_id=env.event_id, correlation_id=None) is None
    env = reply_event("x", chat="-100123")
    job = send_job_for(env.payload, event_id=env.event_id, correlation_id=None)
    assert job is not None and job.chat_id == "-100123"
    already_sent = env.payload.model_copy(update={"status": DeliveryStatus.SENT})
    assert send_job_for(already_sent, event_id=env.event_id, correlation_id=None) is None


def test_chat_id_comes_from_the_conversation_key() -> None:
    assert chat_id_of("tg-x:42", "tg-x") == "42"
    assert chat_id_of("tg-x:a:b", "tg-x") == "a:b"
    assert chat_id_of("tg-y:42", "tg-x") is None
    assert chat_id_of("tg-x:", "tg-x") is None


def test_precheck_refuses_what_cannot_be_sent() -> None:
    sends_to = providers()
    assert precheck(_job(), None, sends_to) == "unknown_channel"
    assert precheck(_job(), TELEGRAM.model_copy(update={"type": "email"}), sends_to) == (
        "unsupported_channel_type"
    )
    assert precheck(_job(chat_id=None), TELEGRAM, sends_to) == "invalid_conversation_key"
    assert precheck(_job(text="  "), TELEGRAM, sends_to) == "empty_text"
    assert precheck(_job(text="x" * 11), TELEGRAM, sends_to) == "text_too_long"
    assert precheck(_job(), TELEGRAM, sends_to) is None


def test_send_message_body() -> None:
    assert telegram_send_message(outgoing(_job(), None)) == {"chat_id": 42, "text": "hi"}
    assert telegram_send_message(outgoing(_job(chat_id="@shop"), "7")) == {
        "chat_id": "@shop",
        "text": "hi",
        "reply_to_message_id": 7,
        "allow_sending_without_reply": True,
    }


def test_buttons_become_telegrams_inline_keyboard() -> None:
    buttons = tuple(Button(text=str(n), data=f"csat:d:{n}") for n in range(1, 11))
    job = replace(_job(), buttons=buttons)
    body = telegram_send_message(outgoing(job, None))
    rows = body["reply_markup"]["inline_keyboard"]
    # At most 8 a row (Telegram's), in order.
    assert [len(row) for row in rows] == [8, 2]
    assert [key for row in rows for key in row] == [
        {"text": str(n), "callback_data": f"csat:d:{n}"} for n in range(1, 11)
    ]


def test_pacer_spaces_sends_per_channel() -> None:
    pacer = ChannelPacer(rate_per_second=10)
    assert [pacer.reserve("a", 100.0) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert pacer.reserve("b", 100.0) == 0.0
    assert pacer.reserve("a", 200.0) == 0.0  # idle long enough: no debt carried over
    assert ChannelPacer(rate_per_second=0).reserve("a", 1.0) == 0.0


def test_a_retry_after_holds_every_chat_of_the_channel() -> None:
    for rate in (0, 10):
        pacer = ChannelPacer(rate_per_second=rate)
        pacer.hold("a", until=105.0)
        assert pacer.reserve("a", 100.0) == pytest.approx(5.0)  # any chat of channel a
        assert pacer.reserve("b", 100.0) == 0.0
        pacer.hold("a", until=101.0)  # a shorter hold does not cut the longer one
        assert pacer.reserve("a", 106.0) == pytest.approx(0.0, abs=0.11)
