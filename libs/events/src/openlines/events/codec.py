"""Wire format: one JSON (UTF-8) envelope per Kafka record, key = ``stream_id``.

Decoding resolves the payload class by (topic, type) (see ``topics.payload_class``):

- fast path: the ``type`` and ``schema_version`` headers name a class at its current version,
  so the bytes are validated in one pass by ``Envelope[ThatClass]``;
- otherwise (no headers, headers that disagree with the body, old versions): the body is parsed,
  its own ``type`` and ``schema_version`` decide, upcasters run, then the same validation.

The body is authoritative; headers are only a hint. Every failure raises a ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pydantic_core
from pydantic import ValidationError

from openlines.events.envelope import (
    Envelope,
    EventPayload,
    envelope_model,
    route_plain_validation,
)
from openlines.events.errors import (
    DecodeError,
    InvalidPayload,
    MalformedRecord,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from openlines.events.topics import payload_class
from openlines.events.upcasting import register_upcaster, upcast

__all__ = [
    "BulkDecoder",
    "DecodeError",
    "Headers",
    "InvalidPayload",
    "KafkaRecord",
    "MalformedRecord",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "decode",
    "encode",
    "from_json_dict",
    "register_upcaster",
    "to_json_dict",
]

Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]
"""aiokafka gives a list of (str, bytes); FastStream a dict of str."""


class KafkaRecord(NamedTuple):
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encode(env: Envelope[Any], traceparent: str | None = None) -> KafkaRecord:
    """The record to produce: JSON value, ``stream_id`` key, type/version/id headers."""
    headers = [
        ("type", env.type.encode()),
        ("schema_version", str(env.schema_version).encode()),
        ("event_id", str(env.event_id).encode()),
    ]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    value = env.__pydantic_serializer__.to_json(env)
    return KafkaRecord(env.stream_id.encode(), value, headers)


def decode(
    value: bytes | str,
    headers: Headers | None = None,
    *,
    topic: str | None = None,
) -> Envelope[Any]:
    """The envelope in a record's value; ``topic`` disambiguates shared type names."""
    hint = _header_hint(headers) if headers is not None else None
    if hint is not None:
        kind = _known(topic, hint[0])
        if kind is not None and hint[1] == kind.SCHEMA_VERSION:
            try:
                return envelope_model(kind).__pydantic_validator__.validate_json(value)
            except ValidationError:
                pass  # the slow path below decides, and names the error properly
    try:
        data = pydantic_core.from_json(value)
    except ValueError as exc:
        raise MalformedRecord(f"value is not JSON: {exc}") from None
    return from_json_dict(data, topic=topic)


class BulkDecoder:
    """``decode`` for a reader of many records of one topic (replay, export): the same result
    and the same errors, with the validator for each (type, schema_version) header pair looked
    up once. Records written by ``encode`` carry those two headers first, so the common case
    costs two tuple reads and a dict lookup before pydantic validates the bytes; anything
    else goes through ``decode``.
    """

    def __init__(self, topic: str | None) -> None:
        self.topic = topic
        self._validators: dict[tuple[bytes, bytes], Any] = {}

    def __call__(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Envelope[Any]:
        if len(headers) >= 2 and headers[0][0] == "type" and headers[1][0] == "schema_version":
            key = (headers[0][1], headers[1][1])
            validator = self._validators.get(key)
            if validator is None:
                validator = self._validators[key] = self._validator(headers)
            if validator is not False:
                try:
                    return validator.validate_json(value)
                except ValidationError:
                    pass  # decode decides, and names the error
        return decode(value, headers, topic=self.topic)

    def _validator(self, headers: Sequence[tuple[str, bytes]]) -> Any:
        hint = _header_hint(headers)
        kind = _known(self.topic, hint[0]) if hint is not None else None
        if hint is None or kind is None or hint[1] != kind.SCHEMA_VERSION:
            return False  # no fast path for this pair: decode every time
        return envelope_model(kind).__pydantic_validator__


def to_json_dict(env: Envelope[Any]) -> dict[str, Any]:
    """JSON-ready dict (e.g. for a JSONB column); ``from_json_dict`` reverses it."""
    return env.model_dump(mode="json")


def from_json_dict(data: Any, *, topic: str | None = None) -> Envelope[Any]:
    """Envelope from a parsed JSON object; upcasts old payload versions."""
    kind, data = _prepare(data, topic)
    try:
        return envelope_model(kind).__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        raise _classify(exc) from exc


# Plain ``Envelope.model_validate`` / ``model_validate_json`` decode through this module.
route_plain_validation(from_json_dict, decode)


def _prepare(data: Any, topic: str | None) -> tuple[type[EventPayload], dict[str, Any]]:
    if not isinstance(data, dict):
        raise MalformedRecord(f"envelope must be a JSON object, got {type(data).__name__}")
    type_name = data.get("type")
    version = data.get("schema_version")
    payload = data.get("payload")
    if not isinstance(type_name, str):
        raise MalformedRecord("envelope has no string 'type'")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedRecord("envelope has no integer 'schema_version'")
    if not isinstance(payload, dict):
        raise MalformedRecord("envelope 'payload' must be a JSON object")
    kind = payload_class(topic, type_name)
    if version != kind.SCHEMA_VERSION:
        payload = upcast(kind, version, payload, topic=topic)
        data = {**data, "schema_version": kind.SCHEMA_VERSION, "payload": payload}
    return kind, data


def _known(topic: str | None, type_name: str) -> type[EventPayload] | None:
    try:
        return payload_class(topic, type_name)
    except UnknownEventType:
        return None


def _header_hint(headers: Headers) -> tuple[str, int] | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    type_name: str | None = None
    version: int | None = None
    for name, raw in items:
        if raw is None:
            continue
        if name == "type":
            type_name = raw.decode() if isinstance(raw, bytes) else raw
        elif name == "schema_version":
            try:
                version = int(raw)
            except ValueError:
                return None
    if type_name is None or version is None:
        return None
    return type_name, version


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors)


def _classify(exc: ValidationError) -> DecodeError:
    if all(e["loc"][:1] == ("payload",) for e in exc.errors(include_url=False)):
        return InvalidPayload(_describe(exc))
    return MalformedRecord(_describe(exc))
