"""Keyset-page cursors: the last row's sort key as an opaque token (URL-safe base64 of a JSON
array), read back strictly. A cursor is client input once it leaves: its decoded form is
validated like any body (a forged `[date, 1]`, a list, a dict, a float... are refused, not a
500)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


class BadCursor(ValueError):
    pass


def encode_cursor(values: Sequence[object]) -> str:
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, shape: TypeAdapter[T]) -> T:
    """The values `encode_cursor` wrote, as `shape` (strict: in JSON a datetime and a UUID
    are strings, nothing else); `BadCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return shape.validate_json(raw, strict=True)
    except ValueError as exc:  # binascii.Error and ValidationError are ValueErrors
        raise BadCursor("cursor is not one this API returned") from exc
