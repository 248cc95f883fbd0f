"""The AsyncAPI document (from the services' FastStream brokers) covers the event catalog
exactly: every topic and every event type appears, and nothing else; its references resolve and
real records validate against what it says each topic carries."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openlines.events.codec import encode
from openlines.events.envelope import EventPayload
from openlines.events.testing import envelopes
from openlines.events.testing.schema_check import check
from openlines.events.topics import TOPICS
from openlines.stack.asyncapi import asyncapi_document

ENVELOPE_REF = "#/components/schemas/Envelope_"
ENTRIES = [(t.name, kind) for t in TOPICS.values() for kind in t.event_types]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    target: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _types_of(doc: dict[str, Any], channel: dict[str, Any]) -> set[str]:
    """Event types (payload class names) a channel's messages carry: each record is the
    envelope of one of them."""
    schemas = doc["components"]["schemas"]
    messages = doc["components"]["messages"]
    found: set[str] = set()
    for ref in _refs(channel["messages"]):
        message = messages[ref.rsplit("/", 1)[-1]]
        payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[-1]]
        for inner in _refs(payload):
            assert inner.startswith(ENVELOPE_REF), inner
            found.add(inner[len(ENVELOPE_REF) :].rstrip("_"))
    return found


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi_document()


def _catalog_types(*topics: str) -> set[str]:
    return {kind.__name__ for topic in topics for kind in TOPICS[topic].event_types}


def test_every_catalog_topic_and_type_appears_and_nothing_else(doc: dict[str, Any]) -> None:
    channels = doc["channels"].values()
    assert {channel["address"] for channel in channels} == set(TOPICS)
    found = set().union(*(_types_of(doc, channel) for channel in channels))
    assert found == _catalog_types(*TOPICS)


def test_each_topic_is_written_with_its_own_types(doc: dict[str, Any]) -> None:
    sent = {
        op["channel"]["$ref"].rsplit("/", 1)[-1]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    written = {doc["channels"][name]["address"]: doc["channels"][name] for name in sent}
    assert set(written) == set(TOPICS)  # every topic has a writer
    for topic, channel in written.items():
        assert _types_of(doc, channel) == _catalog_types(topic), topic


def test_subscribers_take_only_types_of_their_topics(doc: dict[str, Any]) -> None:
    for op in doc["operations"].values():
        if op["action"] != "receive":
            continue
        channel = doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]
        assert _types_of(doc, channel), channel["address"]
        # A subscriber of several topics documents its registered types once for all of them.
        assert _types_of(doc, channel) <= _catalog_types(*TOPICS), channel["address"]


def test_every_ref_in_the_document_resolves(doc: dict[str, Any]) -> None:
    refs = list(_refs(doc))
    assert refs
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref


@pytest.mark.parametrize(("topic", "kind"), ENTRIES, ids=[f"{t}/{k.TYPE}" for t, k in ENTRIES])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_encoded_records_validate_against_their_topics_payload(
    doc: dict[str, Any], topic: str, kind: type[EventPayload], data: st.DataObject
) -> None:
    # What the topic's writer declares it sends: a batch of envelopes of the topic's types.
    [send] = [
        op
        for op in doc["operations"].values()
        if op["action"] == "send" and _resolve(doc, op["channel"]["$ref"])["address"] == topic
    ]
    [message_ref] = send["messages"]
    message = _resolve(doc, _resolve(doc, message_ref["$ref"])["$ref"])
    record = json.loads(encode(data.draw(envelopes(kind))).value)
    assert check([record], message["payload"], doc) == []
    assert check([{**record, "payload": {}}], message["payload"], doc) != []


def test_cli_exports_the_services_asyncapi(tmp_path: Path) -> None:
    from openlines.cli.commands import schema

    parser = argparse.ArgumentParser(prog="openlines")
    schema.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schema", "export", str(tmp_path)])
    assert args.handler(args) == 0
    assert json.loads((tmp_path / "asyncapi.json").read_text()) == json.loads(
        json.dumps(asyncapi_document())
    )
    # Beside it, the catalog's JSON Schema per event type.
    assert len(list((tmp_path / "schemas").rglob("*.json"))) == len(ENTRIES)
