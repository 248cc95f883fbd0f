"""A named consumer and its handlers, registered by event type.

    sub = Subscription("routing.dialogs", topics=[DIALOGS], batch_size=100)
    sub.on(DialogAssigned)(router.on_assigned)

    @sub.on(MessageAppended, when=lambda m: m.direction is Direction.OUT)
    async def record(conn: AsyncConnection, env: Envelope[MessageAppended]) -> None: ...

What the subscription accepts is what it registered: the other events of its topics are
acknowledged with the batch, without a transaction or an inbox row (a topic like dialogs
carries many events a given subscriber ignores, and each would otherwise cost a database round
trip). Handlers receive the batch's transaction (the connection) and hand it to their
service's store functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.envelope import Envelope, EventPayload

if TYPE_CHECKING:
    from openlines.kit.settings import KitSettings

E = TypeVar("E", bound=EventPayload)

Handler = Callable[[AsyncConnection, Envelope[Any]], Awaitable[None]]
AfterCommit = Callable[[list[Envelope[Any]]], Awaitable[None]]


@dataclass(frozen=True)
class _Route:
    handler: Handler
    when: Callable[[Any], bool] | None


class NotRegistered(LookupError):
    """A record reached a subscription that registered nothing for its type."""


@dataclass
class Subscription:
    """A named consumer: its group id, inbox key and metric label, and its handlers."""

    name: str
    topics: Sequence[str]
    batch_size: int = 100
    max_attempts: int = 5
    retry_backoff: float = 0.05
    # Called with the envelopes a batch applied, once its transaction has committed: for side
    # effects that must only reflect durable state (e.g. pushing to WebSockets). Best effort.
    after_commit: AfterCommit | None = None
    _routes: dict[type[EventPayload], _Route] = field(default_factory=dict, init=False, repr=False)
    _any: Handler | None = field(default=None, init=False, repr=False)

    @classmethod
    def configured(
        cls, name: str, topics: Sequence[str], settings: KitSettings, **options: Any
    ) -> Self:
        """A subscription with the service's configured batch size and attempts per record."""
        return cls(
            name,
            topics,
            batch_size=settings.consumer_batch_size,
            max_attempts=settings.consumer_max_attempts,
            **options,
        )

    def on(
        self, *kinds: type[E], when: Callable[[E], bool] | None = None
    ) -> Callable[[Handler], Handler]:
        """Register a handler for events of these types (`when`: only the payloads it
        approves; the others are skipped like unregistered types)."""

        def register(handler: Handler) -> Handler:
            for kind in kinds:
                if kind in self._routes:
                    raise ValueError(f"{self.name}: {kind.__name__} registered twice")
                self._routes[kind] = _Route(handler, when)
            return handler

        return register

    def on_any(self, handler: Handler) -> Handler:
        """Register one handler for every event of the topics (projections that follow all
        of them, tests)."""
        if self._any is not None:
            raise ValueError(f"{self.name}: a catch-all handler is registered already")
        self._any = handler
        return handler

    @property
    def event_types(self) -> tuple[type[EventPayload], ...]:
        """The types registered by name (a catch-all registration takes every type)."""
        return tuple(self._routes)

    @property
    def takes_everything(self) -> bool:
        return self._any is not None

    def accepts(self, env: Envelope[Any]) -> bool:
        route = self._routes.get(type(env.payload))
        if route is None:
            return self._any is not None
        return route.when is None or route.when(env.payload)

    def handler_for(self, env: Envelope[Any]) -> Handler:
        route = self._routes.get(type(env.payload))
        if route is not None:
            return route.handler
        if self._any is not None:
            return self._any
        raise NotRegistered(f"{self.name}: nothing registered for {env.type}")

    async def dispatch(self, conn: AsyncConnection, env: Envelope[Any]) -> None:
        await self.handler_for(env)(conn, env)
