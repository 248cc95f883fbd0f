"""Upcasters: a test-only type whose schema went v0 -> v1 -> v2 decodes old records as v2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from openlines.events import topics, upcasting
from openlines.events.codec import decode, encode, from_json_dict, register_upcaster
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.errors import InvalidPayload, UnsupportedSchemaVersion

PROBES = "openlines.probes.v1"
OTHER = "openlines.other-probes.v1"


class WidgetResized(EventPayload):
    """v2: ``size`` became ``width``/``height`` (v1) and gained a unit (v2)."""

    TYPE: ClassVar[str] = "WidgetResized"
    SCHEMA_VERSION: ClassVar[int] = 2

    widget_id: str
    width: int
    height: int
    unit: str


class OtherWidgetResized(WidgetResized):
    """Same name on another topic, to show topic-specific upcasters."""


def v0_to_v1(payload: dict[str, Any]) -> dict[str, Any]:
    width, height = payload.pop("size").split("x")
    return payload | {"width": int(width), "height": int(height)}


def v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return payload | {"unit": "px"}


@pytest.fixture(autouse=True)
def probe_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upcasting, "_UPCASTERS", {})
    for name, kind in ((PROBES, WidgetResized), (OTHER, OtherWidgetResized)):
        monkeypatch.setitem(topics.TOPICS, name, topics.Topic(name, "widget_id", (kind,), "test"))


def _old_record(version: int, payload: dict[str, Any]) -> dict[str, Any]:
    event_id = str(uuid4())
    return {
        "event_id": event_id,
        "type": "WidgetResized",
        "schema_version": version,
        "stream_id": "w-1",
        "stream_version": 3,
        "occurred_at": "2025-01-01T00:00:00Z",
        "recorded_at": "2025-01-01T00:00:01Z",
        "correlation_id": event_id,
        "causation_id": None,
        "producer": "widgets",
        "payload": payload,
    }


def test_chain_upcasts_v0_to_current() -> None:
    register_upcaster("WidgetResized", 0, v0_to_v1)
    register_upcaster("WidgetResized", 1, v1_to_v2)
    stored = _old_record(0, {"widget_id": "w-1", "size": "640x480"})
    original = json.loads(json.dumps(stored))
    headers = [("type", b"WidgetResized"), ("schema_version", b"0")]

    env = decode(json.dumps(stored).encode(), headers, topic=PROBES)

    assert env.schema_version == 2
    assert env.payload == WidgetResized(widget_id="w-1", width=640, height=480, unit="px")
    assert env.occurred_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert stored == original  # the caller's dict is untouched
    # Re-encoding writes the current version; it decodes without upcasters.
    assert decode(encode(env).value, topic=PROBES) == env
    # A v1 record only runs the last step.
    v1 = _old_record(1, {"widget_id": "w-1", "width": 1, "height": 2})
    assert from_json_dict(v1, topic=PROBES).payload.unit == "px"


def test_topic_specific_upcaster_wins_on_its_topic() -> None:
    register_upcaster("WidgetResized", 0, v0_to_v1)
    register_upcaster("WidgetResized", 1, v1_to_v2)
    register_upcaster("WidgetResized", 1, lambda p: p | {"unit": "dp"}, topic=OTHER)
    v1 = _old_record(1, {"widget_id": "w-1", "width": 1, "height": 2})
    assert from_json_dict(v1, topic=PROBES).payload.unit == "px"
    assert from_json_dict(v1, topic=OTHER).payload.unit == "dp"
    assert from_json_dict(v1, topic=topics.dlq_topic(OTHER)).payload.unit == "dp"


def test_gap_in_the_chain_is_unsupported() -> None:
    register_upcaster("WidgetResized", 1, v1_to_v2)
    with pytest.raises(UnsupportedSchemaVersion, match="from schema_version 0"):
        from_json_dict(_old_record(0, {"widget_id": "w", "size": "1x1"}), topic=PROBES)


def test_failing_or_wrong_upcasters_give_invalid_payload() -> None:
    register_upcaster("WidgetResized", 0, v0_to_v1)
    register_upcaster("WidgetResized", 1, v1_to_v2)
    with pytest.raises(InvalidPayload, match="upcaster"):
        from_json_dict(_old_record(0, {"widget_id": "w", "size": "oops"}), topic=PROBES)
    with pytest.raises(InvalidPayload, match="widget_id"):
        from_json_dict(_old_record(0, {"size": "1x1"}), topic=PROBES)


def test_duplicate_registration_is_refused() -> None:
    register_upcaster("WidgetResized", 0, v0_to_v1)
    with pytest.raises(ValueError, match="already"):
        register_upcaster("WidgetResized", 0, v0_to_v1)


def test_new_records_skip_upcasting() -> None:
    env = Envelope.new(
        WidgetResized(widget_id="w", width=1, height=1, unit="px"),
        stream_id="w",
        stream_version=1,
        producer="widgets",
    )
    assert decode(encode(env).value, topic=PROBES) == env
