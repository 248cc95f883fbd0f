"""Upcasters: turn an old payload dict into the next schema version, before validation.

A breaking change to a payload bumps its class's ``SCHEMA_VERSION`` and registers one upcaster
per step (``from_version`` -> ``from_version + 1``). Decoding applies them in a chain until the
payload reaches the class's version, so stored streams never need rewriting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openlines.events.envelope import EventPayload
from openlines.events.errors import InvalidPayload, UnsupportedSchemaVersion
from openlines.events.topics import DLQ_SUFFIX

__all__ = ["Upcaster", "register_upcaster", "upcast"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (topic or None, type, from_version); None applies on every topic carrying the type.
_UPCASTERS: dict[tuple[str | None, str, int], Upcaster] = {}


def register_upcaster(
    type: str,
    from_version: int,
    fn: Upcaster,
    *,
    topic: str | None = None,
) -> None:
    """Register ``fn`` to turn a ``type`` payload of ``from_version`` into ``from_version + 1``.

    ``topic`` is needed only for a type name that is defined on several topics and changed on
    one of them (``MessageEdited``).
    """
    key = (topic, type, from_version)
    if key in _UPCASTERS:
        raise ValueError(f"upcaster already registered for {key}")
    _UPCASTERS[key] = fn


def upcast(
    kind: type[EventPayload],
    version: int,
    payload: dict[str, Any],
    *,
    topic: str | None = None,
) -> dict[str, Any]:
    """Bring ``payload`` (of schema ``version``) to ``kind.SCHEMA_VERSION``."""
    if version > kind.SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(
            f"{kind.TYPE} schema_version {version} is newer than this reader's "
            f"{kind.SCHEMA_VERSION}; upgrade openlines-events"
        )
    if topic is not None and topic.endswith(DLQ_SUFFIX):
        topic = topic[: -len(DLQ_SUFFIX)]
    while version < kind.SCHEMA_VERSION:
        fn = _UPCASTERS.get((topic, kind.TYPE, version)) or _UPCASTERS.get(
            (None, kind.TYPE, version)
        )
        if fn is None:
            raise UnsupportedSchemaVersion(
                f"no upcaster for {kind.TYPE} from schema_version {version}"
            )
        try:
            # A copy: the caller's dict (e.g. a stored row) must never change under it.
            result = fn(dict(payload))
        except Exception as exc:
            raise InvalidPayload(f"upcaster {kind.TYPE} v{version} failed: {exc!r}") from exc
        if not isinstance(result, dict):
            raise InvalidPayload(f"upcaster {kind.TYPE} v{version} returned {type(result)}")
        payload, version = result, version + 1
    return payload
