"""Property tests: every catalog type survives encode -> decode and the JSON-dict path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlines.events.codec import decode, encode, from_json_dict, to_json_dict
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import envelopes
from openlines.events.topics import TOPICS

ENTRIES = [(t.name, kind) for t in TOPICS.values() for kind in t.event_types]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _unambiguous(kind: type[EventPayload]) -> bool:
    return {t.by_type.get(kind.TYPE) for t in TOPICS.values()} - {None} == {kind}


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=[f"{t}/{k.TYPE}" for t, k in ENTRIES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(topic: str, kind: type[EventPayload], data: st.DataObject) -> None:
    env = data.draw(envelopes(kind))
    traceparent = data.draw(st.none() | st.just(TRACEPARENT))

    record = encode(env, traceparent=traceparent)

    assert record.key == env.stream_id.encode()
    expected_headers = {
        "type": kind.TYPE.encode(),
        "schema_version": str(kind.SCHEMA_VERSION).encode(),
        "event_id": str(env.event_id).encode(),
    }
    if traceparent:
        expected_headers["traceparent"] = traceparent.encode()
    assert dict(record.headers) == expected_headers
    assert len(record.headers) == len(expected_headers)

    decoded = decode(record.value, record.headers, topic=topic)
    assert decoded == env
    assert type(decoded.payload) is kind
    assert decoded.occurred_at.utcoffset() == env.occurred_at.utcoffset() == timedelta(0)
    # Without headers the body alone decides; re-encoding is byte-identical.
    assert decode(record.value, topic=topic) == env
    assert encode(decoded, traceparent=traceparent) == record
    assert from_json_dict(to_json_dict(env), topic=topic) == env
    if _unambiguous(kind):  # such names need no topic
        assert decode(record.value) == env
        assert Envelope.model_validate(to_json_dict(env)) == env


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=[f"{t}/{k.TYPE}" for t, k in ENTRIES])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_unknown_fields_are_ignored(
    topic: str, kind: type[EventPayload], data: st.DataObject
) -> None:
    env = data.draw(envelopes(kind))
    raw = to_json_dict(env)
    raw["added_in_a_later_minor"] = 1
    raw["payload"]["added_in_a_later_minor"] = {"x": 1}
    assert from_json_dict(raw, topic=topic) == env
