"""Published schemas: a JSON Schema per (topic, type).

Schemas are pydantic's *validation* schemas: fields with defaults are not required, which is
what additive evolution needs (an old record lacks fields added later). The AsyncAPI document
is not made here: it comes from the services' FastStream brokers (`openlines.stack.asyncapi`),
which say who writes and who reads each topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openlines.events.envelope import EventPayload, envelope_model
from openlines.events.topics import TOPICS, Topic

__all__ = ["envelope_schema", "export", "json_schemas", "schema_key"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


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


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export(directory: Path) -> list[Path]:
    """Write ``schemas/<topic>/<Type>.v<version>.json`` under it."""
    directory = Path(directory)
    return [
        _write(
            directory / "schemas" / topic.name / f"{kind.TYPE}.v{kind.SCHEMA_VERSION}.json",
            envelope_schema(topic, kind),
        )
        for topic in TOPICS.values()
        for kind in topic.event_types
    ]
