"""Live counters: an operator's badges (`openlines.kit.counters`), pushed when they change.

A client asks for them once with `{"type": "counters"}` on its socket; it gets them at once,
and from then on a `{"type": "counters", ...}` frame whenever an event it was pushed moved
them. Only an event pushed to a session can move its counters: the counters count what the
session may list, and every event of a dialog it may list (before or after) reaches it. They
are counted from notify's own dialog views with the same SQL dialogs' `GET /api/v1/counters`
runs over its read model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit.counters import counters_json
from openlines.notify import views
from openlines.notify.hub import Session


class LiveCounters:
    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine  # a getter: the runtime creates the engine at start

    async def send(self, session: Session, *, always: bool = False) -> None:
        async with self._engine().connect() as conn:
            totals = await views.counters(conn, session.scope)
        if always or totals != session.counters:
            session.counters = totals
            session.offer(json.dumps({"type": "counters", **counters_json(totals)}))

    async def refresh(self, sessions: Iterable[Session]) -> None:
        for session in sessions:
            if session.wants_counters:
                await self.send(session)
