"""Every catalog event, at the largest its bounds allow, fits one Kafka record; and every
string and list in the catalog has a bound (a new unbounded field fails here)."""

from __future__ import annotations

from typing import Any

import pytest

from openlines.events.envelope import EventPayload
from openlines.events.schema import envelope_schema
from openlines.events.topics import TOPICS, Topic
from openlines.kit.settings import RECORD_ENVELOPE_ROOM, KitSettings

# JSON escapes a control character as \uXXXX: the most bytes one character can take.
_BYTES_PER_CHAR = 6
_HEADERS_AND_KEY = 4096  # type, schema_version, event_id, traceparent and the stream id

CASES = [(topic, kind) for topic in TOPICS.values() for kind in topic.event_types]


def _worst(schema: dict[str, Any], root: dict[str, Any], path: str) -> int:
    """The most bytes a JSON value valid against `schema` can take (fails on unbounded)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _worst(target, root, path)
    if "anyOf" in schema:
        return max(_worst(sub, root, path) for sub in schema["anyOf"])
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return max(len(str(v)) + 2 for v in values)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return 2 + sum(
            len(name) + 4 + _worst(sub, root, f"{path}.{name}") for name, sub in props.items()
        )
    if kind == "array":
        assert "maxItems" in schema, f"{path}: a list without maxItems"
        return 2 + schema["maxItems"] * (_worst(schema["items"], root, f"{path}[]") + 1)
    if kind == "string":
        if schema.get("format") in ("uuid", "date-time"):
            return 40
        assert "maxLength" in schema, f"{path}: a string without maxLength"
        return 2 + _BYTES_PER_CHAR * schema["maxLength"]
    if kind in ("integer", "number"):
        return 24
    if kind in ("boolean", "null"):
        return 5
    raise AssertionError(f"{path}: unexpected schema {schema}")


@pytest.mark.parametrize(("topic", "kind"), CASES, ids=lambda c: getattr(c, "TYPE", ""))
def test_the_largest_legal_event_fits_a_record_with_room_to_spare(
    topic: Topic, kind: type[EventPayload]
) -> None:
    schema = envelope_schema(topic, kind)
    payload = schema["properties"]["payload"]
    worst = _worst(payload, schema, f"{kind.TYPE}.payload") + _HEADERS_AND_KEY
    limit = KitSettings().kafka_max_record_bytes - RECORD_ENVELOPE_ROOM
    assert worst <= limit, f"{kind.TYPE}: up to {worst} bytes, over {limit}"
