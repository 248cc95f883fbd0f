"""Every undecodable record raises the right DecodeError (the consumer sends it to the DLQ)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from openlines.events.catalog import (
    ChannelType,
    DialogMessageEdited,
    InboundMessageEdited,
    MessageDispatched,
)
from openlines.events.codec import decode, encode, from_json_dict
from openlines.events.envelope import Envelope
from openlines.events.errors import (
    DecodeError,
    InvalidPayload,
    MalformedRecord,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from openlines.events.topics import DIALOGS, INBOUND, OUTBOUND, dlq_topic

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _dispatched() -> Envelope[MessageDispatched]:
    dialog_id = uuid4()
    return Envelope.new(
        MessageDispatched(
            dialog_id=dialog_id,
            message_id=uuid4(),
            channel_id="tg-sales",
            provider_message_id="991",
            attempts=1,
        ),
        stream_id=str(dialog_id),
        stream_version=0,
        producer="outbound",
    )


def _body(env: Envelope[Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode(env).value)
    return result


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_errors_are_value_errors() -> None:
    for error in (MalformedRecord, UnknownEventType, InvalidPayload, UnsupportedSchemaVersion):
        assert issubclass(error, DecodeError)
    assert issubclass(DecodeError, ValueError)


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b"{", b"\xff\xfe", b"[]", b"42", b'"text"', b"null"],
)
def test_malformed_values(value: bytes) -> None:
    with pytest.raises(MalformedRecord):
        decode(value, topic=OUTBOUND)


@pytest.mark.parametrize("field", ["type", "schema_version", "payload", "event_id", "stream_id"])
def test_missing_envelope_fields_are_malformed(field: str) -> None:
    env = _dispatched()
    body = _body(env)
    del body[field]
    record = encode(env)
    with pytest.raises(MalformedRecord):
        decode(_raw(body), record.headers, topic=OUTBOUND)


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_id", "not-a-uuid"), ("occurred_at", "2026-01-01T00:00:00"), ("stream_version", -1)],
)
def test_invalid_envelope_fields_are_malformed(field: str, value: object) -> None:
    env = _dispatched()
    body = _body(env) | {field: value}
    with pytest.raises(MalformedRecord, match=field):
        decode(_raw(body), encode(env).headers, topic=OUTBOUND)


def test_unknown_type() -> None:
    body = _body(_dispatched()) | {"type": "MessageTeleported"}
    with pytest.raises(UnknownEventType, match="MessageTeleported"):
        decode(_raw(body), topic=OUTBOUND)
    with pytest.raises(UnknownEventType):
        decode(_raw(body))


def test_type_on_the_wrong_topic_is_unknown() -> None:
    record = encode(_dispatched())
    with pytest.raises(UnknownEventType, match=DIALOGS):
        decode(record.value, record.headers, topic=DIALOGS)


def test_ambiguous_type_needs_the_topic() -> None:
    dialog_id = uuid4()
    env = Envelope.new(
        DialogMessageEdited(dialog_id=dialog_id, message_id=uuid4(), text="x", edited_at=NOW),
        stream_id=str(dialog_id),
        stream_version=9,
        producer="dialogs",
    )
    record = encode(env)
    with pytest.raises(UnknownEventType, match="ambiguous"):
        decode(record.value, record.headers)
    assert decode(record.value, record.headers, topic=DIALOGS) == env
    # The inbound class needs fields this payload lacks: same name, other contract.
    with pytest.raises(InvalidPayload):
        decode(record.value, record.headers, topic=INBOUND)


def test_inbound_message_edited_resolves_on_its_topic() -> None:
    env = Envelope.new(
        InboundMessageEdited(
            channel_id="tg-sales",
            channel_type=ChannelType.TELEGRAM,
            conversation_key="tg-sales:1",
            external_message_id="5",
            text="fixed typo",
            edited_at=NOW,
        ),
        stream_id="tg-sales:1",
        stream_version=0,
        producer="ingest",
    )
    record = encode(env)
    decoded = decode(record.value, record.headers, topic=INBOUND)
    assert type(decoded.payload) is InboundMessageEdited
    assert decode(record.value, record.headers, topic=dlq_topic(INBOUND)) == env
    # A topic this library does not know resolves by type alone: ambiguous here.
    with pytest.raises(UnknownEventType, match="ambiguous"):
        decode(record.value, record.headers, topic="dc2.openlines.inbound.v1")


@pytest.mark.parametrize(
    "change",
    [
        {"attempts": 0},  # ge=1
        {"dialog_id": "nope"},
        {"provider_message_id": None},
        {"retryable": True, "attempts": "many"},
    ],
)
def test_invalid_payloads(change: dict[str, Any]) -> None:
    env = _dispatched()
    body = _body(env)
    body["payload"] |= change
    with pytest.raises(InvalidPayload, match="payload"):
        decode(_raw(body), encode(env).headers, topic=OUTBOUND)
    with pytest.raises(InvalidPayload):
        from_json_dict(body, topic=OUTBOUND)


def test_missing_payload_field_is_invalid_payload() -> None:
    body = _body(_dispatched())
    del body["payload"]["channel_id"]
    with pytest.raises(InvalidPayload, match="channel_id"):
        decode(_raw(body), topic=OUTBOUND)


def test_newer_schema_version_is_unsupported() -> None:
    body = _body(_dispatched()) | {"schema_version": 2}
    with pytest.raises(UnsupportedSchemaVersion, match="newer"):
        decode(_raw(body), topic=OUTBOUND)


def test_older_version_without_upcaster_is_unsupported() -> None:
    body = _body(_dispatched()) | {"schema_version": 0}
    with pytest.raises(UnsupportedSchemaVersion, match="no upcaster"):
        decode(_raw(body), topic=OUTBOUND)


def test_headers_are_only_a_hint() -> None:
    env = _dispatched()
    record = encode(env)
    lying = [("type", b"MessageDispatchFailed"), ("schema_version", b"1")]
    assert decode(record.value, lying, topic=OUTBOUND) == env
    garbage = [("type", b"MessageDispatched"), ("schema_version", b"x"), ("junk", None)]
    assert decode(record.value, garbage, topic=OUTBOUND) == env
    # FastStream passes headers as a dict of str.
    as_dict = {name: value.decode() for name, value in record.headers}
    assert decode(record.value, as_dict, topic=OUTBOUND) == env
    assert decode(record.value.decode(), topic=OUTBOUND) == env
