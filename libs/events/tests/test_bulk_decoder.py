"""`BulkDecoder` (replay's and export's decode) returns and raises what `decode` does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlines.events.codec import BulkDecoder, DecodeError, decode, encode
from openlines.events.envelope import EventPayload
from openlines.events.testing import envelopes
from openlines.events.topics import TOPICS

ENTRIES = [(t.name, kind) for t in TOPICS.values() for kind in t.event_types]


def _outcome(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except DecodeError as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=[f"{t}/{k.TYPE}" for t, k in ENTRIES])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_bulk_decoder_agrees_with_decode(
    topic: str, kind: type[EventPayload], data: st.DataObject
) -> None:
    env = data.draw(envelopes(kind))
    record = encode(env)
    headers = list(record.headers)
    # Headers as written, or missing, reordered, naming another type or an old version.
    variant = data.draw(st.sampled_from(["as written", "none", "reordered", "other", "old"]))
    if variant == "none":
        headers = []
    elif variant == "reordered":
        headers = headers[::-1]
    elif variant == "other":
        headers[0] = ("type", data.draw(st.sampled_from([b"MessageAppended", b"NoSuchType"])))
    elif variant == "old":
        headers[1] = ("schema_version", b"0")
    value = record.value
    if data.draw(st.booleans()):  # and sometimes a damaged body
        cut = data.draw(st.integers(min_value=0, max_value=len(value)))
        value = value[:cut]
    bulk = BulkDecoder(topic)
    expected = _outcome(lambda: decode(value, headers, topic=topic))
    for _ in range(2):  # the second time from the decoder's cache
        found = _outcome(lambda: bulk(value, headers))
        assert found == expected
        if not isinstance(expected, tuple):
            assert type(found) is type(expected)
            assert found.model_dump() == expected.model_dump()  # type: ignore[attr-defined]
