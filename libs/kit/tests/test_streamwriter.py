"""The kit's stream writer on the real Postgres: retries, duplicates, snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.catalog import DialogRenamed
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.topics import DIALOGS
from openlines.kit.db.tables import snapshots
from openlines.kit.eventstore import ConcurrencyConflict, EventStore
from openlines.kit.streamwriter import (
    Aggregate,
    Loaded,
    Snapshots,
    StreamWriter,
    TooMuchContention,
)

# A tiny aggregate: the titles a stream was given, in order (immutable state).
Titles = tuple[str, ...]


class Projected:
    """What the writer handed to `project`, to see it ran once per successful append."""

    def __init__(self) -> None:
        self.calls: list[tuple[Titles, list[int]]] = []

    async def __call__(
        self, conn: AsyncConnection, state: Titles, envelopes: Sequence[Envelope]
    ) -> None:
        self.calls.append((state, [env.stream_version for env in envelopes]))


def titles_of(env: Envelope) -> str:
    payload = env.payload
    assert isinstance(payload, DialogRenamed)
    return payload.title


def aggregate(projected: Projected | None = None, every: int | None = None) -> Aggregate[Titles]:
    return Aggregate(
        topic=DIALOGS,
        initial=lambda _: (),
        evolve=lambda state, env: (*state, titles_of(env)),
        project=projected or Projected(),
        snapshots=(
            Snapshots(
                every=every,
                state_version=1,
                to_json=lambda state: {"titles": list(state)},
                from_json=lambda data: tuple(data["titles"]),
            )
            if every
            else None
        ),
    )


def add(*titles: str) -> Any:
    def decide(_: Titles) -> list[EventPayload]:
        return [DialogRenamed(dialog_id=uuid.uuid4(), title=t, actor_id="op") for t in titles]

    return decide


def stream() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


async def test_a_conflict_reloads_and_decides_again_on_the_fresh_state(
    engine: AsyncEngine, store: EventStore
) -> None:
    projected = Projected()
    writer = StreamWriter(store, aggregate(projected))
    sid = stream()
    async with engine.begin() as conn:
        await writer.execute(conn, sid, add("a"))
        stale = await writer.load(conn, sid)
    async with engine.begin() as conn:  # another writer moves the stream on meanwhile
        await writer.execute(conn, sid, add("b"))
    seen: list[Titles] = []

    def decide(state: Titles) -> list[EventPayload]:
        seen.append(state)
        return add("c")(state)

    async with engine.begin() as conn:
        done = await writer.execute(conn, sid, decide, loaded=stale)
    assert seen == [("a",), ("a", "b")]  # the stale state, then the reloaded one
    assert (done.state, done.version) == (("a", "b", "c"), 3)
    assert projected.calls[-1] == (("a", "b", "c"), [3])
    async with engine.connect() as conn:
        assert [titles_of(e) for e in await store.load(conn, sid)] == ["a", "b", "c"]


async def test_contention_beyond_the_attempts_is_a_concurrency_conflict(
    engine: AsyncEngine, store: EventStore
) -> None:
    writer = StreamWriter(store, aggregate(), attempts=1)
    sid = stream()
    async with engine.begin() as conn:
        stale = await writer.load(conn, sid)
        await writer.execute(conn, sid, add("a"))
    async with engine.begin() as conn:
        with pytest.raises(TooMuchContention) as raised:
            await writer.execute(conn, sid, add("b"), loaded=stale)
    assert isinstance(raised.value, ConcurrencyConflict)
    assert raised.value.stream_id == sid


async def test_an_effect_recorded_before_is_skipped_not_recorded_twice(
    engine: AsyncEngine, store: EventStore
) -> None:
    projected = Projected()
    writer = StreamWriter(store, aggregate(projected))
    sid = stream()
    seed = str(uuid.uuid4())
    async with engine.begin() as conn:
        first = await writer.execute(conn, sid, add("a", "b"), id_seed=seed)
    async with engine.begin() as conn:
        # The same input again (a redelivery): same ids, so the store refuses them.
        again = await writer.execute(conn, sid, add("a", "b"), id_seed=seed)
    assert (first.state, first.version) == (("a", "b"), 2)
    assert (again.state, again.version) == (("a", "b"), 2)
    assert len(projected.calls) == 1
    async with engine.connect() as conn:
        assert await store.version(conn, sid) == 2


async def test_a_decision_of_nothing_writes_nothing(engine: AsyncEngine, store: EventStore) -> None:
    projected = Projected()
    writer = StreamWriter(store, aggregate(projected, every=2))
    sid = stream()
    async with engine.begin() as conn:
        done = await writer.execute(conn, sid, lambda _: [])
    assert (done.state, done.version, projected.calls) == ((), 0, [])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    commands=st.lists(
        st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=4), max_size=12
    ),
    every=st.integers(min_value=1, max_value=6),
)
async def test_loading_from_a_snapshot_gives_what_a_full_replay_gives(
    engine: AsyncEngine, store: EventStore, commands: list[list[str]], every: int
) -> None:
    with_snapshots = StreamWriter(store, aggregate(every=every))
    replaying = StreamWriter(store, aggregate())
    sid = stream()
    async with engine.begin() as conn:
        for titles in commands:
            await with_snapshots.execute(conn, sid, add(*titles))
        fast = await with_snapshots.load(conn, sid)
        full = await replaying.load(conn, sid)
    assert (fast.state, fast.version) == (full.state, full.version)
    expected = tuple(t for titles in commands for t in titles)
    assert full.state == expected
    # A snapshot is taken whenever a command crosses a multiple of `every`, so at most the
    # events of the last command and those before it since that multiple are replayed.
    longest = max((len(titles) for titles in commands), default=0)
    assert fast.replayed < every + longest


async def _written_with_snapshot(engine: AsyncEngine, store: EventStore) -> tuple[str, Loaded]:
    writer = StreamWriter(store, aggregate(every=2))
    sid = stream()
    async with engine.begin() as conn:
        for title in "abcde":
            await writer.execute(conn, sid, add(title))
        loaded = await writer.load(conn, sid)
    assert loaded.replayed == 1  # the snapshot at version 4, then event 5
    return sid, loaded


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param({"state_version": 0}, id="older-state-format"),
        pytest.param({"state": {"unexpected": True}}, id="unreadable-state"),
        pytest.param({"event_id": uuid.uuid4()}, id="taken-on-another-history"),
        pytest.param({"version": 9}, id="beyond-the-stream"),
    ],
)
async def test_a_snapshot_that_cannot_be_trusted_is_ignored_for_a_full_replay(
    engine: AsyncEngine, store: EventStore, spoil: dict[str, Any]
) -> None:
    sid, expected = await _written_with_snapshot(engine, store)
    async with engine.begin() as conn:
        await conn.execute(update(snapshots).where(snapshots.c.stream_id == sid).values(**spoil))
    writer = StreamWriter(store, aggregate(every=2))
    async with engine.begin() as conn:
        loaded = await writer.load(conn, sid)
        assert (loaded.state, loaded.version, loaded.replayed) == (expected.state, 5, 5)
        # The next command's snapshot replaces the spoiled one.
        await writer.execute(conn, sid, add("f"))
        assert (await writer.load(conn, sid)).replayed == 0
