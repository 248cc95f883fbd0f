"""Published schemas: a JSON Schema per (topic, type), and an AsyncAPI 3.0 document.

Schemas are pydantic's *validation* schemas: fields with defaults are not required, which is
what additive evolution needs (an old record lacks fields added later).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from openlines.events.envelope import EventPayload, envelope_model
from openlines.events.topics import TOPICS, Topic

__all__ = ["asyncapi_document", "envelope_schema", "export", "json_schemas", "schema_key"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Kafka record headers (values are UTF-8 bytes).",
    "properties": {
        "type": {"type": "string", "description": "The envelope's type."},
        "schema_version": {"type": "string", "description": "Decimal schema version."},
        "event_id": {"type": "string", "format": "uuid"},
        "traceparent": {"type": "string", "description": "W3C trace context, when traced."},
    },
    "required": ["type", "schema_version", "event_id"],
}


def schema_key(topic: str, kind: type[EventPayload]) -> str:
    return f"{topic}/{kind.TYPE}"


def _doc(kind: type[EventPayload]) -> str:
    return " ".join((kind.__doc__ or kind.TYPE).split())


def envelope_schema(topic: Topic, kind: type[EventPayload]) -> dict[str, Any]:
    """Self-contained schema (local ``$defs``) of the envelope carrying ``kind``."""
    schema = envelope_model(kind).model_json_schema(mode="validation")
    props = schema["properties"]
    # The generic envelope says "type: string"; on the wire each schema has exactly one.
    props["type"] = {
        "const": kind.TYPE,
        "type": "string",
        "description": props["type"].get("description", ""),
    }
    props["schema_version"] = {"const": kind.SCHEMA_VERSION, "type": "integer"}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:openlines:events:{topic.name}:{kind.TYPE}:v{kind.SCHEMA_VERSION}",
        **schema,
        "title": kind.TYPE,
        "description": _doc(kind),
        "x-openlines-topic": topic.name,
        "x-openlines-key": topic.key_field,
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """``{"<topic>/<Type>": schema}`` for every catalog entry."""
    return {
        schema_key(topic.name, kind): envelope_schema(topic, kind)
        for topic in TOPICS.values()
        for kind in topic.event_types
    }


def _channel_id(topic: str) -> str:
    # openlines.dialogs.commands.v1 -> dialogs_commands
    return re.sub(r"^openlines\.|\.v\d+$", "", topic).replace(".", "_")


def _to_components(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/")
                if k == "$ref" and isinstance(v, str)
                else _to_components(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_to_components(v) for v in node]
    return node


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic, one message per (topic, type), shared schemas."""
    schemas: dict[str, Any] = {"RecordHeaders": _HEADERS_SCHEMA}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add_schema(name: str, schema: Any) -> None:
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas named {name!r}")

    for topic in TOPICS.values():
        channel = _channel_id(topic.name)
        channel_messages: dict[str, Any] = {}
        for kind in topic.event_types:
            full = envelope_schema(topic, kind)
            for name, sub in full.pop("$defs", {}).items():
                add_schema(name, _to_components(sub))
            # Topic-specific keys go: the channel says it, and shared types stay one schema.
            for key in ("$schema", "$id", "x-openlines-topic", "x-openlines-key"):
                full.pop(key)
            envelope_name = f"{kind.__name__}Envelope"
            add_schema(envelope_name, _to_components(full))
            message_id = f"{channel}.{kind.TYPE}"
            messages[message_id] = {
                "name": kind.TYPE,
                "title": kind.TYPE,
                "summary": _doc(kind),
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/RecordHeaders"},
                "payload": {"$ref": f"#/components/schemas/{envelope_name}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": f"stream_id = {topic.key_field}"},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
            channel_messages[kind.TYPE] = {"$ref": f"#/components/messages/{message_id}"}
        channels[channel] = {
            "address": topic.name,
            "description": topic.description,
            "messages": channel_messages,
            "bindings": {"kafka": {"topic": topic.name, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"publish_{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{name}"} for name in channel_messages
            ],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "openlines events",
            "version": "1.0.0",
            "description": (
                "Event contracts of openlines (catalog v1). One JSON envelope per record, key = "
                "stream_id. Poison records go to `<topic>.dlq`."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export(directory: Path) -> list[Path]:
    """Write ``schemas/<topic>/<Type>.v<version>.json`` and ``asyncapi.json`` under it."""
    directory = Path(directory)
    written = [
        _write(
            directory / "schemas" / topic.name / f"{kind.TYPE}.v{kind.SCHEMA_VERSION}.json",
            envelope_schema(topic, kind),
        )
        for topic in TOPICS.values()
        for kind in topic.event_types
    ]
    written.append(_write(directory / "asyncapi.json", asyncapi_document()))
    return written
