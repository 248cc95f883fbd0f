"""Published schemas: a file per catalog type, an AsyncAPI document, real records validate."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openlines.events.catalog import MessageReceived
from openlines.events.codec import encode
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.schema import asyncapi_document, export, json_schemas
from openlines.events.testing import envelopes
from openlines.events.topics import INBOUND, TOPICS

ENTRIES = [(t.name, kind) for t in TOPICS.values() for kind in t.event_types]
IDS = [f"{t}/{k.TYPE}" for t, k in ENTRIES]
SCHEMAS = json_schemas()  # built once: generating them per example is slow
DOC = asyncapi_document()

# --- a small JSON Schema checker (jsonschema is not a dependency of this repo) -------------

_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$defs"}
_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
    "object": dict,
    "array": list,
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _format_ok(value: Any, fmt: str) -> bool:
    if not isinstance(value, str):
        return True
    try:
        if fmt == "uuid":
            UUID(value)
        elif fmt == "date-time":
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.tzinfo is not None
    except ValueError:
        return False
    return True


def check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` (the keyword subset pydantic emits)."""
    errors: list[str] = []
    for key, rule in schema.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key == "$ref":
            target: Any = root
            for part in rule.removeprefix("#/").split("/"):
                target = target[part]
            errors += check(value, target, root, path)
        elif key == "type":
            if not _is_type(value, rule):
                errors.append(f"{path}: not {rule}")
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        errors += check(value[name], sub, root, f"{path}.{name}")
        elif key == "required":
            if isinstance(value, dict):
                errors += [f"{path}: missing {name}" for name in rule if name not in value]
        elif key == "additionalProperties":
            if rule is False and isinstance(value, dict):
                extra = set(value) - set(schema.get("properties", {}))
                errors += [f"{path}: extra {name}" for name in sorted(extra)]
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    errors += check(item, rule, root, f"{path}[{i}]")
        elif key == "anyOf":
            if all(check(value, sub, root, path) for sub in rule):
                errors.append(f"{path}: matches no anyOf branch")
        elif key == "enum":
            if value not in rule:
                errors.append(f"{path}: {value!r} not in enum")
        elif key == "const":
            if value != rule or type(value) is not type(rule):
                errors.append(f"{path}: {value!r} != const {rule!r}")
        elif key == "format":
            if not _format_ok(value, rule):
                errors.append(f"{path}: bad {rule}")
        elif key in ("minimum", "maximum"):
            if _is_type(value, "number") and (value < rule if key == "minimum" else value > rule):
                errors.append(f"{path}: {key} {rule}")
        elif key in ("minLength", "maxLength"):
            if isinstance(value, str) and (
                len(value) < rule if key == "minLength" else len(value) > rule
            ):
                errors.append(f"{path}: {key} {rule}")
        elif key in ("minItems", "maxItems"):
            if isinstance(value, list) and (
                len(value) < rule if key == "minItems" else len(value) > rule
            ):
                errors.append(f"{path}: {key} {rule}")
        else:
            raise AssertionError(f"checker does not know keyword {key!r}: extend it")
    return errors


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
    assert set(written) == expected | {out / "asyncapi.json"}
    assert len(written) == len(ENTRIES) + 1
    for path in expected:
        schema = json.loads(path.read_text())
        assert schema["$schema"].endswith("2020-12/schema")
        assert schema["properties"]["type"]["const"] == path.name.split(".v")[0]
        assert set(schema["required"]) >= {"event_id", "type", "stream_id", "payload"}
    assert set(SCHEMAS) == {f"{t}/{k.TYPE}" for t, k in ENTRIES}


def test_asyncapi_lists_all_topics_with_their_types(exported: tuple[Path, list[Path]]) -> None:
    out, _ = exported
    doc = json.loads((out / "asyncapi.json").read_text())
    assert doc == json.loads(json.dumps(DOC))
    assert doc["asyncapi"].startswith("3.")
    channels = doc["channels"]
    assert {c["address"] for c in channels.values()} == set(TOPICS)
    assert len(channels) == 6
    for channel in channels.values():
        topic = TOPICS[channel["address"]]
        refs = [m["$ref"] for m in channel["messages"].values()]
        names = {_resolve(doc, ref)["name"] for ref in refs}
        assert names == set(topic.by_type)
        for ref in refs:
            key = _resolve(doc, ref)["bindings"]["kafka"]["key"]
            assert topic.key_field in key["description"]
    for operation in doc["operations"].values():
        assert operation["action"] == "send"
        _resolve(doc, operation["channel"]["$ref"])


def test_every_ref_in_the_asyncapi_document_resolves() -> None:
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(DOC))
    assert refs
    for ref in refs:
        assert _resolve(DOC, ref) is not None


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    target: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_encoded_records_validate_against_the_exported_schema(
    topic: str, kind: type[EventPayload], data: st.DataObject
) -> None:
    schema = SCHEMAS[f"{topic}/{kind.TYPE}"]
    record = json.loads(encode(data.draw(envelopes(kind))).value)
    assert check(record, schema, schema) == []
    # And via the AsyncAPI components, where refs point elsewhere.
    channel = next(k for k, c in DOC["channels"].items() if c["address"] == topic)
    message = _resolve(DOC, f"#/components/messages/{channel}.{kind.TYPE}")
    assert check(record, message["payload"], DOC) == []


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


def test_cli_schema_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = pytest.importorskip("openlines.cli.commands.schema")
    parser = argparse.ArgumentParser(prog="openlines")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schema", "export", str(tmp_path)])
    assert args.handler(args) == 0
    assert (tmp_path / "asyncapi.json").is_file()
    assert len(list((tmp_path / "schemas").rglob("*.json"))) == len(ENTRIES)
    assert "asyncapi.json" in capsys.readouterr().out
