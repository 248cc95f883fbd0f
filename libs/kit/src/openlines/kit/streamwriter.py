"""One writer for every event-sourced aggregate: load, decide, append, retry, project.

A command runs inside the caller's transaction. The writer loads the aggregate (from its latest
snapshot plus the events after it, when the aggregate keeps snapshots), asks `decide` for the
events to record, and appends them at the version it loaded. When another writer appended
first (ConcurrencyConflict), nothing of the attempt was written, so it reloads and decides
again on the fresh state, a bounded number of times. When the events were already recorded
(DuplicateEvent: deterministic ids derived from the input, e.g. a redelivered record), the
effect exists and the command is done. Only after a successful append are the events applied
to the state and projected, in the same transaction, so readers see their own writes.

Snapshots are a cache of the events, never a source of truth: one is taken when the stream
crosses a multiple of `every` events (or a load had to replay that many), and a snapshot that
is missing, of another state format, unreadable, or not matching the stream's event at its
version is ignored in favour of a full replay.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.envelope import Envelope, EventPayload, deterministic_event_id, utc_now
from openlines.kit.db.tables import snapshots
from openlines.kit.eventstore import ConcurrencyConflict, DuplicateEvent, EventStore, NewEvent
from openlines.kit.log import get_logger

log = get_logger(__name__)

S = TypeVar("S")

Decide = Callable[[S], Sequence[EventPayload]]

LOAD_SNAPSHOT = select(
    snapshots.c.version, snapshots.c.event_id, snapshots.c.state_version, snapshots.c.state
).where(snapshots.c.stream_id == bindparam("stream_id"))
_insert_snapshot = insert(snapshots)
SAVE_SNAPSHOT = _insert_snapshot.on_conflict_do_update(
    index_elements=[snapshots.c.stream_id],
    set_={
        c.name: _insert_snapshot.excluded[c.name]
        for c in snapshots.c
        if c.name not in ("stream_id", "taken_at")
    },
)
# No "only if newer" guard: a snapshot is saved in the transaction that appended up to its
# version, and appends to one stream commit in version order, so saves do too; and a snapshot
# found to be wrong (e.g. past the end of its stream) must be replaced by the next one.


class TooMuchContention(ConcurrencyConflict):
    """Other writers kept winning the race for this stream; the caller may retry later."""

    def __init__(self, stream_id: str, attempts: int) -> None:
        super().__init__(stream_id, -1)
        self.args = (f"stream {stream_id!r}: other writers won {attempts} times in a row",)


@dataclass(frozen=True)
class Snapshots(Generic[S]):
    """How an aggregate's state is kept as JSON. Bump `state_version` whenever the shape of
    `to_json`'s output changes: snapshots of another version are then ignored (replayed)."""

    every: int
    state_version: int
    to_json: Callable[[S], dict[str, Any]]
    from_json: Callable[[dict[str, Any]], S]


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """What the writer needs to know of one kind of aggregate.

    `initial(stream_id)` is the state before any event; `evolve(state, envelope)` returns the
    state after it (it may change `state` in place and return it). `project` writes what the
    service keeps beside the events (read model, lookups), given the state after the events.
    """

    topic: str
    initial: Callable[[str], S]
    evolve: Callable[[S, Envelope], S]
    project: Callable[[AsyncConnection, S, Sequence[Envelope]], Awaitable[None]]
    snapshots: Snapshots[S] | None = None


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """An aggregate as loaded: its state at `version`, and how many events that replayed."""

    stream_id: str
    state: S
    version: int
    replayed: int = 0


class StreamWriter(Generic[S]):
    def __init__(self, store: EventStore, aggregate: Aggregate[S], *, attempts: int = 8) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if aggregate.snapshots is not None and aggregate.snapshots.every < 1:
            raise ValueError("snapshots must be taken every 1 or more events")
        self.store = store
        self.aggregate = aggregate
        self.attempts = attempts

    async def load(self, conn: AsyncConnection, stream_id: str) -> Loaded[S]:
        start = await self._snapshot(conn, stream_id)
        if start is not None:
            after = await self.store.load(conn, stream_id, after_version=start.version - 1)
            # The stream's event at the snapshot's version must be the one it was taken at
            # (a restored or rewritten store makes the snapshot describe another history).
            if after and after[0].event_id == start.event_id:
                return self._fold(start.loaded, after[1:])
            log.warning("snapshot does not match its stream; replaying", stream_id=stream_id)
        history = await self.store.load(conn, stream_id)
        return self._fold(Loaded(stream_id, self.aggregate.initial(stream_id), 0), history)

    async def execute(
        self,
        conn: AsyncConnection,
        stream_id: str,
        decide: Decide[S],
        *,
        cause: Envelope | None = None,
        id_seed: str | None = None,
        loaded: Loaded[S] | None = None,
    ) -> Loaded[S]:
        """Apply `decide` to the current state and record what it returns.

        `id_seed` makes the event ids deterministic (consumers pass their input event's id):
        a second recording of the same effect is then refused by the store and skipped.
        `loaded` is the aggregate as the caller just loaded it in this transaction: the first
        attempt decides on it instead of reading the stream again (a retry always reloads).
        Errors raised by `decide` propagate untouched, before anything was written.
        """
        for attempt in range(1, self.attempts + 1):
            if attempt == 1 and loaded is not None and loaded.stream_id == stream_id:
                current = loaded
            else:
                current = await self.load(conn, stream_id)
            decided = list(decide(current.state))
            if not decided:
                return current
            now = utc_now()
            try:
                # The append goes first: when it clashes, nothing at all was written (the
                # store leaves the transaction clean), so no savepoint is needed around it.
                appended = await self.store.append(
                    conn,
                    stream_id,
                    current.version,
                    [
                        NewEvent(
                            payload,
                            deterministic_event_id(id_seed, str(i)) if id_seed else None,
                            now,
                        )
                        for i, payload in enumerate(decided, start=1)
                    ],
                    topic=self.aggregate.topic,
                    cause=cause,
                )
            except DuplicateEvent:
                log.info("effect already recorded", stream_id=stream_id, seed=id_seed)
                return await self.load(conn, stream_id)
            except ConcurrencyConflict:
                log.info("stream changed concurrently; deciding again", stream_id=stream_id)
                continue
            after = self._fold(current, appended)
            await self.aggregate.project(conn, after.state, appended)
            await self._maybe_snapshot(conn, current, after, appended[-1])
            return after
        raise TooMuchContention(stream_id, self.attempts)

    def _fold(self, start: Loaded[S], envelopes: Sequence[Envelope]) -> Loaded[S]:
        state = start.state
        for env in envelopes:
            state = self.aggregate.evolve(state, env)
        version = envelopes[-1].stream_version if envelopes else start.version
        return Loaded(start.stream_id, state, version, start.replayed + len(envelopes))

    async def _snapshot(self, conn: AsyncConnection, stream_id: str) -> _Start[S] | None:
        policy = self.aggregate.snapshots
        if policy is None:
            return None
        row = (await conn.execute(LOAD_SNAPSHOT, {"stream_id": stream_id})).first()
        if row is None:
            return None
        if row.state_version != policy.state_version:
            return None  # an older state format: replay (the next snapshot replaces it)
        try:
            state = policy.from_json(row.state)
        except Exception:  # a cache: whatever is wrong with it, the events still tell
            log.warning("unreadable snapshot; replaying", stream_id=stream_id, exc_info=True)
            return None
        return _Start(Loaded(stream_id, state, row.version), row.event_id)

    async def _maybe_snapshot(
        self, conn: AsyncConnection, before: Loaded[S], after: Loaded[S], last: Envelope
    ) -> None:
        policy = self.aggregate.snapshots
        if policy is None:
            return
        crossed = after.version // policy.every > before.version // policy.every
        if not (crossed or before.replayed >= policy.every):
            return
        await conn.execute(
            SAVE_SNAPSHOT,
            {
                "stream_id": after.stream_id,
                "version": after.version,
                "event_id": last.event_id,
                "state_version": policy.state_version,
                "state": policy.to_json(after.state),
            },
        )


@dataclass(frozen=True)
class _Start(Generic[S]):
    loaded: Loaded[S]
    event_id: UUID

    @property
    def version(self) -> int:
        return self.loaded.version
