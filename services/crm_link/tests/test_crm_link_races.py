"""Racing writers over one new identity: exactly one customer and one lead come out."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.crm_link import linking
from openlines.crm_link.domain import customer_id_for
from openlines.crm_link.linking import CrmLink
from openlines.crm_link.tables import dialogs, leads
from openlines.events.catalog import DialogLinkedToCrm, LeadCreated
from openlines.events.envelope import Envelope
from openlines.events.lines import load_lines
from openlines.events.topics import DIALOGS
from openlines.kit.eventstore import EventStore
from openlines.kit.subscription import Subscription
from openlines.kit.testing.service import migrated_engine

from .crm_support import opened

MIGRATIONS = Path(linking.__file__).parent / "migrations"


class RacingEventStore(EventStore):
    """Holds every first load until all writers have loaded: they all decide on the same empty
    stream, so all but one must lose the append and decide again."""

    def __init__(self, schema: str, writers: int) -> None:
        super().__init__(schema, producer="crm-link")
        self.gate = asyncio.Barrier(writers)
        self.first_loads = 0
        self.writers = writers

    async def load(
        self, conn: AsyncConnection, stream_id: str, after_version: int = 0
    ) -> list[Envelope]:
        history = await super().load(conn, stream_id, after_version)
        if self.first_loads < self.writers:
            self.first_loads += 1
            await self.gate.wait()
        return history


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, MIGRATIONS, pool_size=12) as eng:
        yield eng


async def test_concurrent_dialogs_of_a_new_identity_make_one_customer_and_one_lead(
    engine: AsyncEngine, db_schema: str, lines_file: Path
) -> None:
    who = "777"
    dialog_ids = [uuid.uuid4() for _ in range(6)]
    # Each dialog twice: redeliveries racing their originals (e.g. during a rebalance).
    envelopes = [
        Envelope.new(opened(d, who), stream_id=str(d), stream_version=1, producer="dialogs")
        for d in dialog_ids * 2
    ]
    # A twin waits on its original's dialog row until that commits, so the first loads are
    # one per dialog: those are the writers held at the gate.
    store = RacingEventStore(db_schema, writers=len(dialog_ids))
    crm = CrmLink(load_lines(lines_file), store, attempts=len(envelopes) + 1)

    consumer: Subscription = Subscription("crm-link.dialogs", topics=[DIALOGS])
    crm.subscribe(consumer)

    async def handle(env: Envelope) -> None:
        async with engine.begin() as conn:
            await consumer.dispatch(conn, env)

    await asyncio.gather(*(handle(env) for env in envelopes))

    customer_id = customer_id_for("telegram", who)
    async with engine.connect() as conn:
        history = await store.load(conn, str(customer_id))
        lead_rows = (await conn.execute(select(leads.c.lead_id))).all()
        linked = (
            await conn.execute(select(dialogs.c.lead_id, func.count()).group_by(dialogs.c.lead_id))
        ).all()
    assert Counter(e.type for e in history) == {
        "CustomerIdentified": 1,
        "LeadCreated": 1,
        "DialogLinkedToCrm": len(dialog_ids),
    }
    [lead] = [e.payload for e in history if isinstance(e.payload, LeadCreated)]
    links = [e.payload for e in history if isinstance(e.payload, DialogLinkedToCrm)]
    assert sorted(link.dialog_id for link in links) == sorted(dialog_ids)
    assert {link.lead_id for link in links} == {lead.lead_id}
    assert [row.lead_id for row in lead_rows] == [lead.lead_id]
    assert [tuple(row) for row in linked] == [(lead.lead_id, len(dialog_ids))]
