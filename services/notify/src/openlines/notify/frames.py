"""What a client may send on its stream: `ping` (answered with `pong`), `counters` (its
counters now, and again whenever they change: `counters.LiveCounters`) and `typing`.

`{"type": "typing", "dialog_id"}` tells the other staff who see the dialog (the push policy:
`domain.watchers`, `SessionHub.relay`) that this operator is writing in it: they get
`{"type": "typing", "dialog_id", "operator_id"}`. The sender must be allowed to write in the
dialog. It is never stored, and it is throttled per (operator, dialog): a client may send it on
every keystroke, colleagues hear of it at most once per interval. A frame that is not one of
these gets an error frame on the sender's own stream; it closes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.notify import views
from openlines.notify.counters import LiveCounters
from openlines.notify.domain import watchers
from openlines.notify.hub import Session, SessionHub

PONG = json.dumps({"type": "pong"})


class Ping(BaseModel):
    """Application-level keepalive for clients that cannot send WebSocket pings."""

    model_config = ConfigDict(extra="allow")
    type: Literal["ping"]


class Counters(BaseModel):
    """Send my counters (as GET /api/v1/counters), and again whenever they change."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["counters"]


class Typing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["typing"]
    dialog_id: UUID


ClientFrame = Annotated[Ping | Counters | Typing, Field(discriminator="type")]
_FRAME: TypeAdapter[Ping | Counters | Typing] = TypeAdapter(ClientFrame)


class BadFrame(ValueError):
    pass


def parse(data: str) -> Ping | Counters | Typing:
    try:
        return _FRAME.validate_json(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "frame"
        raise BadFrame(
            f"{where}: {error['msg']} (frames: ping, counters, typing {{dialog_id}})"
        ) from None


def error_frame(code: str, message: str) -> str:
    return json.dumps({"type": "error", "error": {"code": code, "message": message}})


class Throttle:
    """At most one pass per key per `interval` seconds. In memory: a typing indicator is
    worth nothing after a few seconds, so nothing about it outlives the process."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, UUID], float] = {}
        self._prune_above = 1024

    def allow(self, operator_id: str, dialog_id: UUID) -> bool:
        now = self._clock()
        key = (operator_id, dialog_id)
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        if len(self._last) > self._prune_above:  # forget keys nobody typed in lately
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
            self._prune_above = max(1024, 2 * len(self._last))
        return True

    def __len__(self) -> int:
        return len(self._last)


class ClientFrames:
    """Answers the frames of every session of this process."""

    def __init__(
        self,
        hub: SessionHub,
        engine: Callable[[], AsyncEngine],
        throttle: Throttle,
        counters: LiveCounters,
    ) -> None:
        self.hub = hub
        self._engine = engine
        self.throttle = throttle
        self.counters = counters
        # Told of every relayed typing (dialog, operator): the visitor socket's hook.
        self.typing_hooks: list[Callable[[UUID, str], Awaitable[None]]] = []

    async def handle(self, session: Session, data: str) -> None:
        try:
            frame = parse(data)
        except BadFrame as exc:
            session.offer(error_frame("bad_frame", str(exc)))
            return
        if isinstance(frame, Ping):
            session.offer(PONG)
        elif isinstance(frame, Counters):
            session.wants_counters = True
            await self.counters.send(session, always=True)
        else:
            await self.typing(session, frame.dialog_id)

    async def typing(self, session: Session, dialog_id: UUID) -> None:
        operator_id = session.scope.operator_id
        if not self.throttle.allow(operator_id, dialog_id):
            return
        try:
            async with self._engine().connect() as conn:
                view = await views.load(conn, dialog_id, lock=False)
        except (SQLAlchemyError, OSError):
            # The database is out: the session stays, only this indicator is lost.
            session.offer(error_frame("unavailable", "typing cannot be relayed now; retry"))
            return
        scope = session.scope
        if view is None or not scope.can_read(view.facts):
            # As everywhere: a dialog one may not read does not exist.
            session.offer(error_frame("not_found", f"dialog {dialog_id} not found"))
            return
        if not scope.can_write(view.facts):
            session.offer(
                error_frame("not_allowed", "you may read this dialog but not write in it")
            )
            return
        message = json.dumps(
            {"type": "typing", "dialog_id": str(dialog_id), "operator_id": operator_id}
        )
        self.hub.relay("typing", message, watchers(view), sender=operator_id)
        for hook in self.typing_hooks:
            await hook(dialog_id, operator_id)
