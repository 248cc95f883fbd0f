"""The in-process session hub: connected WebSockets, indexed by who they are.

Publishing never waits on a client: each session has a bounded queue drained by its own
writer task, so one slow browser cannot hold up the consumer or the other sessions. A session
whose queue overflows is closed (1013 "try again later"); its client reconnects and refetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from aiohttp import WSCloseCode, web
from prometheus_client import Counter, Gauge

from openlines.events.envelope import Envelope
from openlines.kit.access import Scope
from openlines.kit.log import get_logger
from openlines.notify.domain import Audience, Reason, reason_for

log = get_logger(__name__)

SESSIONS = Gauge("openlines_notify_sessions", "Open WebSocket sessions")
PUSHED = Counter("openlines_notify_pushed_total", "Messages queued for sessions", ["type"])
DROPPED = Counter(
    "openlines_notify_sessions_dropped_total", "Sessions closed because they fell behind"
)


@dataclass
class Notification:
    envelope: Envelope
    audience: Audience
    _event_json: str | None = field(default=None, repr=False)

    def message(self, reason: Reason) -> str:
        """`{"type", "dialog_id", "reason", "event": <envelope>}`; the envelope is encoded
        once however many sessions get it."""
        if self._event_json is None:
            self._event_json = self.envelope.model_dump_json()
        dialog_id = getattr(self.envelope.payload, "dialog_id", None)
        head = json.dumps(
            {
                "type": self.envelope.type,
                "dialog_id": str(dialog_id) if isinstance(dialog_id, UUID) else None,
                "reason": reason.value,
            }
        )
        return f'{head[:-1]}, "event": {self._event_json}}}'


class Session:
    def __init__(self, scope: Scope, ws: web.WebSocketResponse, queue_size: int) -> None:
        self.scope = scope
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.overflowed = False
        self.wants_counters = False
        """The client asked for its counters (`LiveCounters`); the last ones it was sent:"""
        self.counters: dict[str, int] | None = None
        self._closing: asyncio.Task[bool] | None = None
        self._writer = asyncio.create_task(self._write())

    def offer(self, message: str) -> bool:
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            DROPPED.inc()
            log.warning("session fell behind; closing it", operator_id=self.scope.operator_id)
            self._closing = asyncio.create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )
            return False

    async def _write(self) -> None:
        while True:
            message = await self.queue.get()
            try:
                await self.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return  # the socket is closing; the handler unregisters the session

    async def stop(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class SessionHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._by_operator: dict[str, set[Session]] = defaultdict(set)
        self._by_line: dict[str, set[Session]] = defaultdict(set)
        """Sessions by the lines they work on (the unassigned dialogs of those lines)."""
        self._by_supervised_line: dict[str, set[Session]] = defaultdict(set)
        self._all_seeing: set[Session] = set()
        self._sessions: set[Session] = set()
        self._pushed: set[Session] = set()
        """Sessions pushed to since `take_pushed` (whose counters may have moved)."""

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, scope: Scope, ws: web.WebSocketResponse) -> Session:
        session = Session(scope, ws, self.queue_size)
        self._sessions.add(session)
        self._by_operator[scope.operator_id].add(session)
        for line_id in scope.member_lines:
            self._by_line[line_id].add(session)
        if scope.supervised_lines is None:
            self._all_seeing.add(session)
        else:
            for line_id in scope.supervised_lines:
                self._by_supervised_line[line_id].add(session)
        SESSIONS.set(len(self._sessions))
        return session

    async def close(self, session: Session) -> None:
        self._sessions.discard(session)
        _discard(self._by_operator, session.scope.operator_id, session)
        for line_id in session.scope.member_lines:
            _discard(self._by_line, line_id, session)
        for line_id in session.scope.supervised_lines or ():
            _discard(self._by_supervised_line, line_id, session)
        self._all_seeing.discard(session)
        SESSIONS.set(len(self._sessions))
        await session.stop()

    def publish(self, notification: Notification) -> int:
        """Queue the event for every session it concerns; returns how many."""
        delivered = 0
        for session, reason in self._reached(notification.audience):
            if session.offer(notification.message(reason)):
                delivered += 1
                self._pushed.add(session)
        if delivered:
            PUSHED.labels(notification.envelope.type).inc(delivered)
        return delivered

    def relay(self, kind: str, message: str, audience: Audience, *, sender: str) -> int:
        """Queue a message that is no event (a colleague typing) for the sessions `audience`
        reaches, except the sender's own; returns how many."""
        delivered = sum(
            1
            for session, _ in self._reached(audience)
            if session.scope.operator_id != sender and session.offer(message)
        )
        if delivered:
            PUSHED.labels(kind).inc(delivered)
        return delivered

    def _reached(self, audience: Audience) -> list[tuple[Session, Reason]]:
        """The sessions the policy lets hear of something with this audience, and why."""
        candidates = set(self._all_seeing)
        for operator_id in audience.personal:
            candidates |= self._by_operator.get(operator_id, set())
        for line_id in audience.lines:
            candidates |= self._by_line.get(line_id, set())
        for line_id in audience.dialog_lines:
            candidates |= self._by_supervised_line.get(line_id, set())
        reached = []
        for session in candidates:
            reason = reason_for(session.scope, audience)
            if reason is not None:
                reached.append((session, reason))
        return reached

    def take_pushed(self) -> set[Session]:
        """The open sessions pushed to since the last call (whose counters may have moved)."""
        pushed, self._pushed = self._pushed, set()
        return {s for s in pushed if s in self._sessions}

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close(code=code, message=b"server shutdown")


def _discard(index: dict[str, set[Session]], key: str, session: Session) -> None:
    sessions = index.get(key)
    if sessions is not None:
        sessions.discard(session)
        if not sessions:
            del index[key]
