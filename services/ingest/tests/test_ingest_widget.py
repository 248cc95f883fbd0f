"""The widget's adapter, visitor tokens and rate limiter alone (pure: no broker, no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlines.events.catalog import ChannelType, MessageReceived
from openlines.events.lines import Channel, Line
from openlines.ingest.domain import Accepted, InvalidUpdate
from openlines.ingest.visitor import RateLimiter
from openlines.ingest.widget import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WINDOW_SECONDS,
    WidgetAdapter,
    signature,
    signed_headers,
)
from openlines.kit import visitor as tokens

NOW = 1_800_000_000.0
CHANNEL = Channel(id="web-x", type="widget", secret="widget-secret")
OTHER = Channel(id="web-y", type="widget", secret="widget-secret")
LINE = Line(id="line-x", channels=(CHANNEL, OTHER))


def adapter(now: float = NOW) -> WidgetAdapter:
    return WidgetAdapter(clock=lambda: now)


def body(**fields: Any) -> bytes:
    return json.dumps({"visitor_id": "v-1", "text": "hello", **fields}).encode()


# -- signature and timestamp window --------------------------------------------------------------


def test_a_correctly_signed_body_within_the_window_is_accepted() -> None:
    raw = body()
    assert adapter().verify(CHANNEL, signed_headers("widget-secret", raw, now=NOW), raw)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: signature("widget-secret", str(int(NOW)), b"x")},  # no timestamp
        {TIMESTAMP_HEADER: str(int(NOW))},  # no signature
        signed_headers("wrong-secret", body(), now=NOW),
        {**signed_headers("widget-secret", body(), now=NOW), TIMESTAMP_HEADER: "-5"},
        {**signed_headers("widget-secret", body(), now=NOW), TIMESTAMP_HEADER: "١٢٣"},
        {**signed_headers("widget-secret", body(), now=NOW), SIGNATURE_HEADER: "sha256=00"},
    ],
)
def test_missing_or_wrong_signatures_are_refused(headers: dict[str, str]) -> None:
    assert not adapter().verify(CHANNEL, headers, body())


def test_the_signature_covers_the_body_and_the_timestamp() -> None:
    headers = signed_headers("widget-secret", body(), now=NOW)
    assert not adapter().verify(CHANNEL, headers, body(text="changed"))
    # Re-dating a captured request breaks its signature: the timestamp is inside the HMAC.
    redated = {**headers, TIMESTAMP_HEADER: str(int(NOW) + 60)}
    assert not adapter(NOW + 60).verify(CHANNEL, redated, body())


def test_the_timestamp_must_be_within_five_minutes_either_way() -> None:
    raw = body()
    headers = signed_headers("widget-secret", raw, now=NOW)
    assert adapter(NOW + WINDOW_SECONDS).verify(CHANNEL, headers, raw)
    assert adapter(NOW - WINDOW_SECONDS).verify(CHANNEL, headers, raw)
    assert not adapter(NOW + WINDOW_SECONDS + 1).verify(CHANNEL, headers, raw)
    assert not adapter(NOW - WINDOW_SECONDS - 1).verify(CHANNEL, headers, raw)


def test_a_channel_without_secret_accepts_nothing() -> None:
    open_channel = CHANNEL.model_copy(update={"secret": ""})
    raw = body()
    assert not adapter().verify(open_channel, signed_headers("", raw, now=NOW), raw)


def _accepted(data: dict[str, Any], channel: Channel = CHANNEL) -> Accepted:
    outcome = adapter().normalise(data, LINE, channel)
    assert isinstance(outcome, Accepted)
    return outcome


def test_a_replay_within_the_window_is_the_same_event() -> None:
    data = json.loads(body())
    assert _accepted(data).event_id == _accepted(dict(data)).event_id
    assert _accepted(data).event_id != _accepted({**data, "text": "other"}).event_id
    assert _accepted(data).event_id != _accepted(data, OTHER).event_id
    # With the sender's message id, the id is the identity (a re-signed retry dedupes too).
    first = _accepted({**data, "message_id": "m-1"})
    assert first.event_id == _accepted({**data, "message_id": "m-1", "name": "Ann"}).event_id
    assert first.event_id != _accepted({**data, "message_id": "m-2"}).event_id


# -- normalisation -----------------------------------------------------------------------------


def test_a_visitor_message_becomes_message_received() -> None:
    outcome = _accepted(
        {
            "visitor_id": "v-42",
            "name": "Ann",
            "email": "ann@example.com",
            "text": "Where is my order?",
            "attachments": [
                {"url": "https://shop.example/x.png", "name": "x.png", "mime_type": "image/png"}
            ],
            "page_url": "https://shop.example/cart",
        }
    )
    payload = outcome.payload
    assert isinstance(payload, MessageReceived)
    assert payload.channel_type is ChannelType.WIDGET
    assert payload.conversation_key == "web-x:v-42"
    assert payload.external_chat_id == payload.external_user_id == "v-42"
    assert payload.customer.name == "Ann" and payload.customer.email == "ann@example.com"
    assert payload.text == "Where is my order?"
    assert payload.attachments[0].url == "https://shop.example/x.png"
    assert payload.line_id == "line-x"


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"text": "no visitor"},
        {"visitor_id": "v-1"},  # neither text nor attachments
        {"visitor_id": "v-1", "text": "   "},
        {"visitor_id": "has space", "text": "x"},
        {"visitor_id": "v-1", "text": "x", "unknown": 1},  # our own format: strict
        {"visitor_id": "v-1", "text": "x" * 5000},  # beyond the channel's 4096
        {"visitor_id": "v-1", "attachments": [{"name": "no url"}]},
    ],
)
def test_what_is_not_a_widget_message_is_refused(data: object) -> None:
    with pytest.raises(InvalidUpdate):
        adapter().normalise(data, LINE, CHANNEL)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "visitor_id": st.text(max_size=140) | _json,
        "name": st.text(max_size=300) | _json,
        "email": st.text(max_size=300) | _json,
        "text": st.text(max_size=50) | _json,
        "attachments": st.lists(
            st.fixed_dictionaries(
                {"url": st.text(max_size=30)},
                optional={"name": st.text(), "size": st.integers(), "kind": st.text()},
            ),
            max_size=12,
        )
        | _json,
        "page_url": st.text() | _json,
        "message_id": st.text(max_size=300) | _json,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_fields | _json)
def test_the_parser_only_ever_accepts_or_refuses(data: object) -> None:
    """Fuzz: any JSON is either a MessageReceived or an InvalidUpdate (a 400), never a crash."""
    try:
        outcome = adapter().normalise(data, LINE, CHANNEL)
    except InvalidUpdate:
        return
    assert isinstance(outcome, Accepted)
    MessageReceived.model_validate_json(outcome.payload.model_dump_json())


# -- visitor tokens: one conversation each -------------------------------------------------------


def test_a_visitor_token_names_one_conversation_of_one_channel() -> None:
    token, visitor = tokens.issue(CHANNEL, "v-abc", 3600, now=NOW)
    assert visitor.conversation_key == "web-x:v-abc"
    assert tokens.verify(CHANNEL, token, now=NOW + 10) == visitor
    with pytest.raises(tokens.InvalidVisitorToken):
        tokens.verify(OTHER, token, now=NOW)  # same secret, other channel
    with pytest.raises(tokens.InvalidVisitorToken):
        tokens.verify(CHANNEL, token, now=NOW + 3600)  # expired
    rekeyed = CHANNEL.model_copy(update={"secret": "rotated"})
    with pytest.raises(tokens.InvalidVisitorToken):
        tokens.verify(rekeyed, token, now=NOW)


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the forger's short keys, on purpose
def test_a_visitor_token_cannot_be_forged_or_retargeted() -> None:
    import jwt

    token, _ = tokens.issue(CHANNEL, "v-abc", 3600, now=NOW)
    claims = jwt.decode(token, options={"verify_signature": False})
    # Another conversation, signed with the raw secret (what a browser would never have):
    for key in (b"widget-secret", b"guess"):
        forged = jwt.encode({**claims, "sub": "v-victim"}, key, algorithm="HS256")
        with pytest.raises(tokens.InvalidVisitorToken):
            tokens.verify(CHANNEL, forged, now=NOW)
    unsigned = jwt.encode({**claims, "sub": "v-victim"}, "", algorithm="none")
    with pytest.raises(tokens.InvalidVisitorToken):
        tokens.verify(CHANNEL, unsigned, now=NOW)
    # The secret never appears in a token.
    assert "widget-secret" not in token


def test_new_visitor_ids_are_random_and_well_formed() -> None:
    ids = {tokens.new_visitor_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(tokens.VISITOR_ID.match(v) for v in ids)


# -- rate limiter --------------------------------------------------------------------------------


def test_the_rate_limiter_allows_the_rate_and_refills_evenly() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert all(limiter.take("v", 6) == 0 for _ in range(6))
    wait = limiter.take("v", 6)
    assert wait == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert limiter.take("other", 6) == 0  # per key
    now[0] = 10.0
    assert limiter.take("v", 6) == 0
    assert limiter.take("v", 6) > 0


def test_the_rate_limiter_forgets_idle_keys_beyond_its_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0], max_keys=10)
    for i in range(50):
        limiter.take(f"k{i}", 60)
        now[0] += 2.0  # each key is full again 1 s later
    assert len(limiter._buckets) <= 11


def test_channel_type_widget_is_in_the_adapters() -> None:
    from openlines.ingest.app import channel_adapters

    assert isinstance(channel_adapters()[ChannelType.WIDGET], WidgetAdapter)
    assert tokens.AUDIENCE == "openlines-widget"
    assert LINE.channels[0].widget is None  # defaults apply


def test_settings_are_nested_per_type() -> None:
    channel = Channel.model_validate(
        {"id": "web-z", "type": "widget", "secret": "s", "widget": {"messages_per_minute": 5}}
    )
    assert channel.widget is not None and channel.widget.messages_per_minute == 5
    with pytest.raises(ValueError):
        Channel.model_validate({"id": "web-z", "type": "widget", "widget": {"unknown": 1}})
