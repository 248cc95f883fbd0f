"""A small JSON Schema checker for tests: the keyword subset pydantic emits (jsonschema is not
a dependency of this repo). Used to hold real encoded records against the published per-type
schemas and against the AsyncAPI document's payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

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
