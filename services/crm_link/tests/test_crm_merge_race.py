"""A merge racing a new dialog of the merged customer: whichever appends to the merged
customer's stream first, every dialog of it ends with the survivor, and no lead is made."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.crm_link import linking
from openlines.crm_link.domain import customer_id_for
from openlines.crm_link.linking import CrmLink
from openlines.crm_link.tables import dialogs, leads
from openlines.events.catalog import CustomersMerged, DialogLinkedToCrm, LeadCreated
from openlines.events.envelope import Envelope
from openlines.events.lines import load_lines
from openlines.events.topics import DIALOGS
from openlines.kit.eventstore import EventStore
from openlines.kit.subscription import Subscription
from openlines.kit.testing.service import migrated_engine

from .crm_support import opened

MIGRATIONS = Path(linking.__file__).parent / "migrations"


WRITER: contextvars.ContextVar[str] = contextvars.ContextVar("writer", default="")


class GatedEventStore(EventStore):
    """Holds the first load of one stream by each of two writers until both loaded it, so both
    decide on the merged customer as it was before either wrote; then lets `first` append
    first, and the other one only once that append is done (it then waits on the unique
    index until the first commits, loses, reloads and decides again)."""

    def __init__(self, schema: str) -> None:
        super().__init__(schema, producer="crm-link")
        self.stream: str | None = None
        self.first = ""
        self.gate = asyncio.Barrier(2)
        self.appended = asyncio.Event()
        self.held: set[str] = set()

    def arm(self, stream_id: str, first: str) -> None:
        self.stream, self.first = stream_id, first
        self.gate, self.appended, self.held = asyncio.Barrier(2), asyncio.Event(), set()

    async def load(
        self, conn: AsyncConnection, stream_id: str, after_version: int = 0
    ) -> list[Envelope]:
        history = await super().load(conn, stream_id, after_version)
        writer = WRITER.get()
        if stream_id == self.stream and writer and writer not in self.held:
            self.held.add(writer)
            await asyncio.wait_for(self.gate.wait(), 10)
            if writer != self.first:
                await asyncio.wait_for(self.appended.wait(), 10)
        return history

    async def append(self, conn: AsyncConnection, stream_id: str, *args: Any, **kw: Any) -> Any:
        appended = await super().append(conn, stream_id, *args, **kw)
        if stream_id == self.stream and WRITER.get() == self.first:
            self.appended.set()
        return appended


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, MIGRATIONS, pool_size=6) as eng:
        yield eng


@pytest.mark.parametrize("first", ["merge", "opening"])
async def test_merge_while_a_dialog_opens_for_the_merged_customer(
    engine: AsyncEngine, db_schema: str, lines_file: Path, first: str
) -> None:
    store = GatedEventStore(db_schema)
    crm = CrmLink(load_lines(lines_file), store, attempts=5)
    consumer: Subscription = Subscription("crm-link.dialogs", topics=[DIALOGS])
    crm.subscribe(consumer)

    async def open_dialog(dialog_id: uuid.UUID, who: str) -> None:
        env = Envelope.new(
            opened(dialog_id, who), stream_id=str(dialog_id), stream_version=1, producer="dialogs"
        )
        async with engine.begin() as conn:
            await consumer.dispatch(conn, env)

    survivor_user, duplicate_user = f"s-{uuid.uuid4()}", f"d-{uuid.uuid4()}"
    kept, dup = (
        customer_id_for("telegram", survivor_user),
        customer_id_for("telegram", duplicate_user),
    )
    a1, b1, b2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await open_dialog(a1, survivor_user)
    await open_dialog(b1, duplicate_user)

    async def merge() -> None:
        WRITER.set("merge")
        async with engine.begin() as conn:
            await crm.merge(conn, kept, dup, "ann")

    async def opening() -> None:
        WRITER.set("opening")
        await open_dialog(b2, duplicate_user)

    store.arm(str(dup), first)
    await asyncio.gather(merge(), opening())

    async with engine.connect() as conn:
        rows = await conn.execute(
            select(dialogs.c.dialog_id, dialogs.c.customer_id, dialogs.c.lead_id).where(
                dialogs.c.dialog_id.in_([a1, b1, b2])
            )
        )
        by_dialog = {r.dialog_id: (r.customer_id, r.lead_id) for r in rows}
        lead_rows = await conn.execute(
            select(leads.c.lead_id, leads.c.customer_id).where(leads.c.customer_id.in_([kept, dup]))
        )
        lead_owners = {r.lead_id: r.customer_id for r in lead_rows}
        kept_stream = [e.payload for e in await store.load(conn, str(kept))]
        dup_stream = [e.payload for e in await store.load(conn, str(dup))]

    # Every dialog, old and new, shows the survivor; both leads are now its own; none more.
    assert {customer for customer, _ in by_dialog.values()} == {kept}
    assert len(lead_owners) == 2 and set(lead_owners.values()) == {kept}
    assert all(lead in lead_owners for _, lead in by_dialog.values())
    assert sum(isinstance(e, LeadCreated) for e in kept_stream + dup_stream) == 2
    # The survivor's stream names every dialog of the merged customer, b2 included,
    # whichever writer won; the merged stream ends with its merge.
    relinked = {e.dialog_id for e in kept_stream if isinstance(e, DialogLinkedToCrm)}
    assert {a1, b1, b2} <= relinked
    assert isinstance(dup_stream[-1], CustomersMerged)
    assert store.held == {"merge", "opening"}  # both decided on the same old stream
    # Who won: the opening got b2 into the merged stream (then moved), or followed the merge.
    b2_in_merged = any(isinstance(e, DialogLinkedToCrm) and e.dialog_id == b2 for e in dup_stream)
    assert b2_in_merged is (first == "opening")
