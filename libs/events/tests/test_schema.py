"""Published schemas: a JSON Schema file per catalog type, and real records validate against it.
(The AsyncAPI document comes from the services' FastStream brokers: tests/contract.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openlines.events.catalog import MessageReceived
from openlines.events.codec import encode
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.schema import export, json_schemas
from openlines.events.testing import envelopes
from openlines.events.testing.schema_check import check
from openlines.events.topics import INBOUND, TOPICS

ENTRIES = [(t.name, kind) for t in TOPICS.values() for kind in t.event_types]
IDS = [f"{t}/{k.TYPE}" for t, k in ENTRIES]
SCHEMAS = json_schemas()  # built once: generating them per example is slow


# --- tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("schemas")
    return out, export(out)


def test_every_type_has_a_schema_file(exported: tuple[Path, list[Path]]) -> None:
    out, written = exported
    expected = {
        out / "schemas" / topic / f"{kind.TYPE}.v{kind.SCHEMA_VERSION}.json"
        for topic, kind in ENTRIES
    }
    assert set(written) == expected
    assert len(written) == len(ENTRIES)
    for path in expected:
        schema = json.loads(path.read_text())
        assert schema["$schema"].endswith("2020-12/schema")
        assert schema["properties"]["type"]["const"] == path.name.split(".v")[0]
        assert set(schema["required"]) >= {"event_id", "type", "stream_id", "payload"}
    assert set(SCHEMAS) == {f"{t}/{k.TYPE}" for t, k in ENTRIES}


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_encoded_records_validate_against_the_exported_schema(
    topic: str, kind: type[EventPayload], data: st.DataObject
) -> None:
    schema = SCHEMAS[f"{topic}/{kind.TYPE}"]
    record = json.loads(encode(data.draw(envelopes(kind))).value)
    assert check(record, schema, schema) == []


@settings(max_examples=5, deadline=None)
@given(env=envelopes(MessageReceived))
def test_the_checker_rejects_broken_records(env: Envelope[MessageReceived]) -> None:
    schema = SCHEMAS[f"{INBOUND}/MessageReceived"]
    good = json.loads(encode(env).value)
    assert check(good, schema, schema) == []
    for breakage in (
        lambda r: r.pop("event_id"),
        lambda r: r.update(type="Other"),
        lambda r: r.update(event_id="nope"),
        lambda r: r["payload"].pop("channel_id"),
        lambda r: r["payload"].update(channel_type="fax"),
    ):
        bad = json.loads(json.dumps(good))
        breakage(bad)
        assert check(bad, schema, schema), breakage
