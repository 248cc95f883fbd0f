"""The envelope every openlines event travels in, and the base class of every payload.

Timestamps: every datetime in the contracts must be timezone-aware. Naive datetimes are
*rejected* (a naive ``datetime.now()`` is local time, and guessing would shift it silently);
aware datetimes with a non-zero offset are converted to UTC.

Causation: ``Envelope.new(payload, ..., cause=other)`` makes a follow-up event. It inherits
``other.correlation_id`` and sets ``causation_id = other.event_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar, cast
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    model_validator,
)

__all__ = [
    "EVENT_ID_NAMESPACE",
    "Envelope",
    "EventPayload",
    "P",
    "UtcDatetime",
    "deterministic_event_id",
    "envelope_model",
    "route_plain_validation",
    "utc_now",
]

# Fixed forever: changing it changes every deterministic event id.
EVENT_ID_NAMESPACE = UUID("6fdd6d8f-6ab2-47bb-b3df-8f459a01bcd0")


def _to_utc(value: datetime) -> datetime:
    # JSON "Z" already parses to a zero-offset tzinfo; only convert real offsets (cheap path).
    return value.astimezone(UTC) if value.utcoffset() else value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, normalised to UTC. Naive input is rejected."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def deterministic_event_id(*parts: str) -> UUID:
    """A uuid5 for events derived from natural ids (e.g. channel id + provider message id).

    A provider retrying a webhook then yields the same event id, so consumers dedupe it.
    Parts are joined with U+001F (unit separator), which must not occur inside a part.
    """
    if not parts:
        raise ValueError("deterministic_event_id needs at least one part")
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts))


class EventPayload(BaseModel):
    """Base of every catalog payload.

    Frozen, and ``extra="ignore"``: within a schema version changes are additive, so an older
    reader must accept records carrying fields it does not know yet.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=EventPayload)


class Envelope(BaseModel, Generic[P]):
    """One event: metadata plus a typed payload.

    Generic only so that decoding can validate the concrete payload class in a single pass
    (``Envelope[MessageReceived]``); plain ``Envelope`` is what callers annotate with.
    ``Envelope[X]`` instances compare equal to ``Envelope`` instances with the same data.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    event_id: UUID
    """Unique id; deterministic (uuid5) where the source has a natural id."""
    type: str
    """The payload's event name, e.g. ``MessageReceived``."""
    schema_version: int = Field(ge=1)
    """Version of the payload schema."""
    stream_id: str = Field(min_length=1)
    """The aggregate id; also the Kafka key."""
    stream_version: int = Field(ge=0)
    """1-based, gapless position in an event-sourced stream; 0 for commands/notifications."""
    # Plain AwareDatetime here: ``_check`` normalises both in one call (decode hot path).
    occurred_at: AwareDatetime
    """When it happened (UTC)."""
    recorded_at: AwareDatetime
    """When the producer recorded it (UTC)."""
    correlation_id: UUID | None
    """The event that started the chain."""
    causation_id: UUID | None
    """The direct cause."""
    producer: str = Field(min_length=1)
    """Service name of the writer."""
    payload: SerializeAsAny[P]
    """The typed payload; serialized as its concrete class."""

    # Plain Envelope would validate a dict payload as the bare base class and drop every field:
    # route it through the codec, which resolves the class and upcasts. (A model "before"
    # validator would do it too, but it makes pydantic materialise JSON input: 40% slower.)
    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        if _is_plain(cls) and isinstance(obj, dict) and isinstance(obj.get("payload"), dict):
            return cast(Self, _plain_decoders().from_dict(obj))
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        if _is_plain(cls):
            data = bytes(json_data) if isinstance(json_data, bytearray) else json_data
            return cast(Self, _plain_decoders().from_json(data))
        return super().model_validate_json(json_data, **kwargs)

    @model_validator(mode="after")
    def _check(self) -> Self:
        kind = type(self.payload)
        if getattr(kind, "TYPE", None) != self.type:
            raise ValueError(
                f"type {self.type!r} does not match payload {kind.__name__} "
                f"(TYPE={getattr(kind, 'TYPE', None)!r})"
            )
        if self.schema_version != kind.SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} does not match "
                f"{kind.__name__}.SCHEMA_VERSION={kind.SCHEMA_VERSION}"
            )
        if self.occurred_at.utcoffset() or self.recorded_at.utcoffset():
            # Frozen model: write through __dict__, as pydantic itself does.
            self.__dict__["occurred_at"] = _to_utc(self.occurred_at)
            self.__dict__["recorded_at"] = _to_utc(self.recorded_at)
        return self

    @classmethod
    def new(
        cls,
        payload: P,
        *,
        stream_id: str,
        stream_version: int,
        producer: str,
        event_id: UUID | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        occurred_at: datetime | None = None,
        cause: Envelope[Any] | None = None,
    ) -> Envelope[P]:
        """Wrap ``payload``; ``type`` and ``schema_version`` come from its class.

        ``event_id`` defaults to uuid4, ``correlation_id`` to the event's own id (it starts a
        chain), ``occurred_at`` and ``recorded_at`` to now. ``cause`` sets correlation and
        causation from a previous envelope; it cannot be combined with explicit ids.
        """
        if cause is not None:
            if correlation_id is not None or causation_id is not None:
                raise ValueError("pass either cause= or correlation_id/causation_id, not both")
            correlation_id = cause.correlation_id or cause.event_id
            causation_id = cause.event_id
        event_id = event_id or uuid.uuid4()
        now = utc_now()
        kind = type(payload)
        return envelope_model(kind)(
            event_id=event_id,
            type=kind.TYPE,
            schema_version=kind.SCHEMA_VERSION,
            stream_id=stream_id,
            stream_version=stream_version,
            occurred_at=occurred_at or now,
            recorded_at=now,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            producer=producer,
            payload=payload,
        )


def _is_plain(cls: type[BaseModel]) -> bool:
    return not cls.__pydantic_generic_metadata__["args"]


@dataclass(frozen=True)
class _PlainDecoders:
    from_dict: Callable[[dict[str, Any]], Envelope[Any]]
    from_json: Callable[[str | bytes], Envelope[Any]]


# Where plain ``Envelope`` validation goes. The codec imports this module, so it hands its
# decoders in (``route_plain_validation``) instead of this module importing it back;
# ``openlines.events`` imports the codec, so they are in place before any envelope is read.
_plain: _PlainDecoders | None = None


def route_plain_validation(
    from_dict: Callable[[dict[str, Any]], Envelope[Any]],
    from_json: Callable[[str | bytes], Envelope[Any]],
) -> None:
    """Called once by the codec: plain ``Envelope.model_validate(_json)`` decodes through it."""
    global _plain
    _plain = _PlainDecoders(from_dict, from_json)


def _plain_decoders() -> _PlainDecoders:
    if _plain is None:
        raise RuntimeError("openlines.events.codec is not loaded; import openlines.events")
    return _plain


_MODELS: dict[type[EventPayload], type[Envelope[Any]]] = {}


def envelope_model(payload_class: type[P]) -> type[Envelope[P]]:
    """``Envelope[payload_class]``, cached (pydantic's own parametrisation cache is slower)."""
    model = _MODELS.get(payload_class)
    if model is None:
        model = _MODELS[payload_class] = Envelope[payload_class]  # type: ignore[valid-type]
    return model
