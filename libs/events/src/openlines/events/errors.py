"""Decode errors. Consumers send any record raising ``DecodeError`` straight to the DLQ:
retrying cannot fix it."""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "InvalidPayload",
    "MalformedRecord",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
]


class DecodeError(ValueError):
    """A record that cannot become an ``Envelope``."""


class MalformedRecord(DecodeError):
    """Not JSON, not an object, or the envelope fields are missing or invalid."""


class UnknownEventType(DecodeError):
    """The (topic, type) is not in the catalog, or the type is ambiguous without a topic."""


class UnsupportedSchemaVersion(UnknownEventType):
    """Newer than this library knows, or older with no upcaster registered for the gap."""


class InvalidPayload(DecodeError):
    """The payload does not validate against its class (after upcasting)."""
