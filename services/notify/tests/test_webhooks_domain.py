"""Webhooks' pure parts: signatures, what an answer means, when to retry, which addresses may
be called, which line an event belongs to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from openlines.events.catalog import OperatorPresenceChanged
from openlines.events.lines import load_lines
from openlines.events.testing import factories
from openlines.events.webhooks import SignatureError, sign, signature, verify
from openlines.kit.backoff import RetryPolicy
from openlines.notify.webhooks.domain import (
    Answered,
    DeadLetter,
    Delivered,
    RetryLater,
    Unreachable,
    Unsubscribe,
    UrlRefused,
    decide,
    is_public,
    line_hint,
    order_key,
    retry_after_seconds,
    url_host,
)

LINES = load_lines(Path(__file__).resolve().parents[3] / "config" / "demo.yaml")
SECRET = "whsec_test-secret-123"
BODY = b'{"event_id": "e1", "type": "DialogOpened"}'


def test_the_signature_is_stripes_scheme_over_the_time_and_the_raw_body() -> None:
    header = sign(SECRET, BODY, timestamp=1700000000)
    assert header.startswith("t=1700000000,v1=")
    assert header.endswith(signature(SECRET, 1700000000, BODY))
    assert verify(SECRET, BODY, header, now=1700000010) == 1700000000
    # A second v1 (a secret being rotated) is accepted when either matches.
    assert verify(SECRET, BODY, header + ",v1=00ff", now=1700000000) == 1700000000


@pytest.mark.parametrize(
    ("secret", "body", "header", "now"),
    [
        ("another-secret-0000", BODY, sign(SECRET, BODY, 100), 100),  # wrong secret
        (SECRET, BODY + b" ", sign(SECRET, BODY, 100), 100),  # body changed
        (SECRET, BODY, sign(SECRET, BODY, 100), 100 + 301),  # replayed too late
        (SECRET, BODY, None, 100),
        (SECRET, BODY, "v1=abc", 100),  # no time
        (SECRET, BODY, "t=100", 100),  # no signature
        (SECRET, BODY, "t=100,v1=" + "0" * 64, 100),
    ],
)
def test_a_wrong_missing_or_stale_signature_is_refused(
    secret: str, body: bytes, header: str | None, now: float
) -> None:
    with pytest.raises(SignatureError):
        verify(secret, body, header, now=now)


POLICY = RetryPolicy(base_seconds=5.0, max_seconds=3600.0, retry_after_cap_seconds=3600.0)
DAY = 24 * 3600.0


def test_any_2xx_delivers_and_410_unsubscribes() -> None:
    assert decide(Answered(204), 1, DAY, POLICY, 0.5) == Delivered(204)
    assert decide(Answered(410), 3, DAY, POLICY, 0.5) == Unsubscribe(410)


@pytest.mark.parametrize(
    "attempt", [Answered(500), Answered(404), Answered(302), Unreachable("timeout")]
)
def test_anything_else_is_retried_with_exponential_backoff_and_jitter(attempt: object) -> None:
    assert isinstance(attempt, Answered | Unreachable)
    delays = [decide(attempt, n, DAY, POLICY, 0.0) for n in range(1, 12)]
    assert all(isinstance(d, RetryLater) for d in delays)
    seconds = [d.delay_seconds for d in delays if isinstance(d, RetryLater)]
    assert seconds[:4] == [2.5, 5.0, 10.0, 20.0]  # half the ceiling with no jitter...
    assert seconds[-1] == 1800.0  # ...capped at an hour
    full = decide(attempt, 3, DAY, POLICY, 0.999)
    assert isinstance(full, RetryLater) and 19.9 < full.delay_seconds < 20.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert decide(Answered(429, 7.0), 1, DAY, POLICY, 0.9) == RetryLater(7.0, "HTTP 429", 429)
    capped = decide(Answered(503, 10**6), 1, DAY, POLICY, 0.9)
    assert isinstance(capped, RetryLater) and capped.delay_seconds == 3600.0


def test_retries_stop_when_the_next_would_fall_past_the_window() -> None:
    late = decide(Answered(500), 9, 30.0, POLICY, 0.5)
    assert late == DeadLetter("gave up after 9 attempts: HTTP 500", 500)
    # About forty attempts fit in a day: exponential backoff capped at an hour (jittered).
    remaining, attempts = DAY, 0
    while True:
        attempts += 1
        decision = decide(Unreachable("refused"), attempts, remaining, POLICY, 0.5)
        if not isinstance(decision, RetryLater):
            break
        remaining -= decision.delay_seconds
    assert isinstance(decision, DeadLetter) and 30 <= attempts <= 45


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
    ],
)
def test_only_public_unicast_addresses_are_called(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "/relative",
        "http://user:pw@example.com/",
        "http://example.com/#frag",
        "http://example.com:99999/",
    ],
)
def test_only_absolute_http_urls_without_credentials(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        url_host(url)
    assert refused.value.code == "invalid_url"


def test_url_host_defaults_the_port() -> None:
    assert url_host("https://example.com/x") == ("example.com", 443)
    assert url_host("http://[::1]:8080/x") == ("::1", 8080)


def test_events_of_a_dialog_are_ordered_by_the_dialog_the_others_by_their_stream() -> None:
    dialog_id = uuid.uuid4()
    stream = factories.DialogStream()
    opened = stream.envelope(factories.dialog_opened(dialog_id))
    assert order_key(opened) == str(dialog_id)
    presence = factories.envelope(
        OperatorPresenceChanged(operator_id="ann", status="online"), stream_id="ann"
    )
    assert order_key(presence) == "ann"


def test_the_line_comes_from_the_event_else_the_dialog_else_the_channel() -> None:
    dialog_id = uuid.uuid4()
    opened = line_hint(factories.dialog_opened(dialog_id, line_id="vip"), LINES)
    assert (opened.line_id, opened.moves_dialog) == ("vip", True)
    message = line_hint(factories.message_appended(dialog_id, "hi"), LINES)
    assert (message.line_id, message.fallback) == (None, "demo")  # the dialog's line first
    received = line_hint(factories.message_received(line_id=None), LINES)
    assert (received.line_id, received.moves_dialog) == ("demo", False)  # its channel's
    presence = line_hint(OperatorPresenceChanged(operator_id="ann", status="online"), LINES)
    assert presence.line_id is None and presence.fallback is None


def test_the_readmes_verification_snippet_verifies_what_notify_signs() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    after = readme.split("<!-- webhook-verify-snippet -->", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    readme_verify = namespace["verify"]
    assert callable(readme_verify)
    header = sign(SECRET, BODY)
    assert readme_verify(SECRET, BODY, header) is True
    assert readme_verify("another-secret-0000", BODY, header) is False
    assert readme_verify(SECRET, BODY + b"x", header) is False
    assert readme_verify(SECRET, BODY, sign(SECRET, BODY, timestamp=1000)) is False  # stale
    assert readme_verify(SECRET, BODY, "garbage") is False
