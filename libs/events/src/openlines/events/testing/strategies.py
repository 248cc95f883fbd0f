"""Hypothesis strategies for catalog payloads and envelopes (needs ``hypothesis`` installed).

Built from the models' own field annotations, so a field added to the catalog is exercised
without touching the tests. Consumers can use them to property-test their handlers.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import annotated_types
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from openlines.events.envelope import Envelope, EventPayload

__all__ = ["envelopes", "models", "payloads", "strategy_for"]

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=EventPayload)

# Non-UTC offsets too: the contracts must normalise them.
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=3)), timezone(-timedelta(hours=5, minutes=30))]
)
_DATETIMES = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=_ZONES
)


def _bounds(metadata: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            found["min"] = int(item.ge)  # type: ignore[call-overload]
        elif isinstance(item, annotated_types.Gt):
            found["min"] = int(item.gt) + 1  # type: ignore[call-overload]
        elif isinstance(item, annotated_types.Le):
            found["max"] = int(item.le)  # type: ignore[call-overload]
        elif isinstance(item, annotated_types.MinLen):
            found["min_size"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            found["max_size"] = item.max_length
    return found


def strategy_for(annotation: Any, metadata: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """A strategy for values of ``annotation`` honouring pydantic/annotated-types bounds."""
    metadata = list(metadata or [])
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return strategy_for(args[0], metadata + list(args[1:]))
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(a, metadata) for a in args))
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (tuple, list):
        items = st.lists(strategy_for(args[0]), max_size=3)
        return items.map(tuple) if origin is tuple else items
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type):
        bounds = _bounds(metadata)
        if issubclass(annotation, Enum):
            return st.sampled_from(list(annotation))
        if issubclass(annotation, BaseModel):
            return models(annotation)
        if annotation is bool:
            return st.booleans()
        if annotation is int:
            return st.integers(
                min_value=bounds.get("min", -(2**40)), max_value=bounds.get("max", 2**40)
            )
        if annotation is str:
            size = bounds.get("min_size", 0)
            return st.text(min_size=size, max_size=max(size, bounds.get("max_size", 40)))
        if annotation is UUID:
            return st.uuids()
        if annotation is AwareDatetime or issubclass(annotation, datetime):
            return _DATETIMES
    raise TypeError(f"no strategy for {annotation!r}")


def models(model: type[M]) -> st.SearchStrategy[M]:
    """Instances of a pydantic model with every field drawn (defaults included)."""
    fields = {
        name: strategy_for(info.annotation, info.metadata)
        for name, info in model.model_fields.items()
    }
    return st.builds(model, **fields)


def payloads(kind: type[P]) -> st.SearchStrategy[P]:
    return models(kind)


def envelopes(kind: type[P]) -> st.SearchStrategy[Envelope[P]]:
    """Envelopes around ``kind`` payloads, some of them caused by another event."""
    return st.builds(
        _envelope,
        payload=payloads(kind),
        stream_id=st.text(min_size=1, max_size=40),
        stream_version=st.integers(min_value=0, max_value=2**31),
        producer=st.sampled_from(["ingest", "dialogs", "routing", "crm-link", "outbound"]),
        event_id=st.uuids(),
        occurred_at=_DATETIMES,
        cause=st.none() | st.tuples(st.uuids(), st.uuids()),
    )


def _envelope(
    payload: P,
    stream_id: str,
    stream_version: int,
    producer: str,
    event_id: UUID,
    occurred_at: datetime,
    cause: tuple[UUID, UUID] | None,
) -> Envelope[P]:
    return Envelope.new(
        payload,
        stream_id=stream_id,
        stream_version=stream_version,
        producer=producer,
        event_id=event_id,
        occurred_at=occurred_at,
        correlation_id=cause[0] if cause else None,
        causation_id=cause[1] if cause else None,
    )
