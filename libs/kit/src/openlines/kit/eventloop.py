"""How every openlines process runs its asyncio program: on uvloop where it is available.

uvloop (libuv) does the same work as asyncio's own loop with less CPU per socket event; the
services spend much of their time in that loop (HTTP, Kafka, Postgres). Measured on ingest:
see the README's benchmark section. ``OPENLINES_EVENT_LOOP=asyncio`` selects the standard loop,
e.g. to rule the loop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopKind = Literal["uvloop", "asyncio"]


def loop_kind() -> LoopKind:
    wanted = os.environ.get("OPENLINES_EVENT_LOOP", "uvloop").strip().lower()
    if wanted not in ("uvloop", "asyncio"):
        raise ValueError(f"OPENLINES_EVENT_LOOP must be 'uvloop' or 'asyncio', not {wanted!r}")
    if wanted == "uvloop":
        try:
            import uvloop  # noqa: F401  (not built for Windows)
        except ImportError:
            return "asyncio"
    return "uvloop" if wanted == "uvloop" else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop of the kind `loop_kind()` names (for ``aiohttp.web.run_app(loop=...)``)."""
    if loop_kind() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop `loop_kind()` names."""
    if loop_kind() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
