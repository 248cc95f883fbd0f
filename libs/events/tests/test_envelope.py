from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from openlines.events.catalog import (
    ChannelType,
    Customer,
    DialogRead,
    DialogRenamed,
    MessageReceived,
)
from openlines.events.codec import to_json_dict
from openlines.events.envelope import Envelope, deterministic_event_id


def _received(**overrides: object) -> MessageReceived:
    fields: dict[str, object] = {
        "channel_id": "tg-sales",
        "channel_type": ChannelType.TELEGRAM,
        "conversation_key": "tg-sales:42",
        "external_chat_id": "42",
        "external_user_id": "42",
        "external_message_id": "7",
        "customer": Customer(name="Ann", external_id="42"),
        "text": "hi",
        "sent_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    return MessageReceived(**(fields | overrides))


def test_new_fills_metadata_from_the_payload_class() -> None:
    before = datetime.now(UTC)
    env = Envelope.new(_received(), stream_id="tg-sales:42", stream_version=0, producer="ingest")
    assert env.type == "MessageReceived"
    assert env.schema_version == MessageReceived.SCHEMA_VERSION == 1
    assert env.correlation_id == env.event_id  # a new chain starts here
    assert env.causation_id is None
    assert before <= env.occurred_at == env.recorded_at <= datetime.now(UTC)
    assert env.recorded_at.tzinfo is UTC


def test_cause_links_the_chain() -> None:
    first = Envelope.new(_received(), stream_id="tg-sales:42", stream_version=0, producer="ingest")
    dialog_id = uuid4()
    second = Envelope.new(
        DialogRenamed(dialog_id=dialog_id, title="VIP", actor_id="op-1"),
        stream_id=str(dialog_id),
        stream_version=3,
        producer="dialogs",
        cause=first,
    )
    third = Envelope.new(
        DialogRead(dialog_id=dialog_id, operator_id="op-1"),
        stream_id=str(dialog_id),
        stream_version=4,
        producer="dialogs",
        cause=second,
    )
    assert second.correlation_id == first.event_id
    assert second.causation_id == first.event_id
    assert third.correlation_id == first.event_id
    assert third.causation_id == second.event_id
    with pytest.raises(ValueError, match="cause"):
        Envelope.new(
            _received(),
            stream_id="x",
            stream_version=0,
            producer="ingest",
            cause=first,
            correlation_id=uuid4(),
        )


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _received(sent_at=datetime(2026, 1, 2, 3, 4, 5))
    with pytest.raises(ValidationError, match="timezone"):
        Envelope.new(
            _received(),
            stream_id="x",
            stream_version=0,
            producer="ingest",
            occurred_at=datetime(2026, 1, 2),
        )


def test_offsets_are_normalised_to_utc() -> None:
    plus3 = timezone(timedelta(hours=3))
    payload = _received(sent_at=datetime(2026, 1, 2, 3, 0, tzinfo=plus3))
    assert payload.sent_at == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert payload.sent_at.utcoffset() == timedelta(0)
    env = Envelope.new(
        payload,
        stream_id="x",
        stream_version=0,
        producer="ingest",
        occurred_at=datetime(2026, 1, 2, 3, 0, tzinfo=plus3),
    )
    assert env.occurred_at.tzinfo is UTC
    assert env.occurred_at.hour == 0
    assert to_json_dict(env)["occurred_at"] == "2026-01-02T00:00:00Z"


def test_type_must_match_the_payload() -> None:
    env = Envelope.new(_received(), stream_id="x", stream_version=0, producer="ingest")
    fields = dict(env) | {"type": "DialogOpened"}
    with pytest.raises(ValidationError, match="does not match payload"):
        Envelope(**fields)
    with pytest.raises(ValidationError, match="schema_version"):
        Envelope(**(dict(env) | {"schema_version": 2}))


def test_stream_version_and_ids_are_checked() -> None:
    with pytest.raises(ValidationError):
        Envelope.new(_received(), stream_id="x", stream_version=-1, producer="ingest")
    with pytest.raises(ValidationError):
        Envelope.new(_received(), stream_id="", stream_version=0, producer="ingest")


def test_frozen_and_hashable() -> None:
    env = Envelope.new(_received(), stream_id="x", stream_version=0, producer="ingest")
    with pytest.raises(ValidationError):
        env.stream_version = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        env.payload.text = "changed"  # type: ignore[misc]
    assert hash(env.payload) == hash(_received())


def test_plain_envelope_validation_resolves_the_payload_class() -> None:
    env = Envelope.new(_received(), stream_id="x", stream_version=0, producer="ingest")
    data = to_json_dict(env)
    loaded: Envelope[Any] = Envelope.model_validate(data)
    assert loaded == env
    assert isinstance(loaded.payload, MessageReceived)
    assert Envelope.model_validate_json(env.model_dump_json()) == env


def test_deterministic_event_id() -> None:
    # Pinned: the namespace must never change, or provider retries stop deduplicating.
    assert deterministic_event_id("tg-sales", "4711") == UUID(
        "babf894b-d263-5659-99e4-4a609c8196b1"
    )
    assert deterministic_event_id("tg-sales", "4711") == deterministic_event_id("tg-sales", "4711")
    assert deterministic_event_id("tg-sales", "4711") != deterministic_event_id("tg-sales", "4712")
    assert deterministic_event_id("a:b", "c") != deterministic_event_id("a", "b:c")
    with pytest.raises(ValueError):
        deterministic_event_id()
