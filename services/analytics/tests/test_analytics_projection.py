"""The read model is one function over events: a replay's batches build what the live
consumer built, and a replay over a live model changes nothing (real Postgres, no broker)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.analytics import projection
from openlines.analytics.tables import dialog_metrics, report_facts
from openlines.events.catalog import Direction, SlaBreached
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.testing.factories import DialogStream
from openlines.kit.testing.service import migrated_engine

MIGRATIONS = Path(projection.__file__).parent / "migrations"
T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url, db_schema, MIGRATIONS, pool_size=2) as engine:
        yield engine


def history(dialog_id: uuid.UUID) -> list[Envelope]:
    stream = DialogStream()
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    reply = factories.message_appended(
        dialog_id, "answer", direction=Direction.OUT, author_id="ann"
    )
    breach = SlaBreached(
        dialog_id=dialog_id, line_id="demo", waiting_since=T0, threshold_seconds=30
    )
    return [
        stream.envelope(factories.dialog_opened(dialog_id), occurred_at=at(0)),
        stream.envelope(factories.message_appended(dialog_id), occurred_at=at(0)),
        stream.envelope(factories.dialog_assigned(dialog_id, "ann"), occurred_at=at(3)),
        stream.envelope(breach, occurred_at=at(30)),
        stream.envelope(reply, occurred_at=at(40)),
        stream.envelope(factories.dialog_closed(dialog_id, "ann"), occurred_at=at(60)),
    ]


async def snapshot(engine: AsyncEngine) -> tuple[Sequence[Any], Sequence[Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(dialog_metrics))).all()
        facts = (
            await conn.execute(
                select(
                    report_facts.c.kind, report_facts.c.operator_id, report_facts.c.value
                ).order_by(report_facts.c.at, report_facts.c.kind)
            )
        ).all()
    return rows, facts


async def test_a_replay_builds_the_model_and_a_second_one_changes_nothing(
    engine: AsyncEngine,
) -> None:
    dialog_id = uuid.uuid4()
    events = history(dialog_id)
    async with engine.begin() as conn:
        await projection.apply_batch(conn, events[:3])
    async with engine.begin() as conn:
        await projection.apply_batch(conn, events[3:])
    built = await snapshot(engine)
    rows, facts = built
    assert len(rows) == 1
    assert (rows[0].first_response_seconds, rows[0].resolution_seconds) == (40, 60)
    assert (rows[0].queue_seconds, rows[0].sla_breaches) == (3, 1)
    assert [f.kind for f in facts] == [
        "opened", "sla_breach", "first_response", "closed", "resolution"
    ]  # fmt: skip

    async with engine.begin() as conn:  # the same topics replayed over the live model
        await projection.apply_batch(conn, events)
    assert await snapshot(engine) == built


async def test_an_sla_marker_read_before_its_dialog_opened_still_counts(
    engine: AsyncEngine,
) -> None:
    # Routing's topic and the dialogs topic have no order between them: the breach may be
    # consumed before the dialog's opening.
    dialog_id = uuid.uuid4()
    opened, said, assigned, breach, *_ = history(dialog_id)
    async with engine.begin() as conn:
        await projection.apply_batch(conn, [breach])
    async with engine.begin() as conn:
        await projection.apply_batch(conn, [opened, said, assigned, breach])
    rows, facts = await snapshot(engine)
    assert [row.sla_breaches for row in rows] == [1]
    assert [f.kind for f in facts].count("sla_breach") == 1
