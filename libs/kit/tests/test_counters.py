"""The counters, once, as a table: Python (`count`, notify's side) and SQL (`count_query`,
dialogs' list and counters endpoint) must give the same numbers for every caller."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.kit.access import DialogFacts
from openlines.kit.counters import (
    WorkColumns,
    WorkFacts,
    count,
    count_query,
    counters_json,
    display,
    matches,
)

from .test_access import DIALOGS, SCOPES

# Every policy case, with every mix of last message and read marks (ann is the caller).
CASES = [
    WorkFacts(dialog, last, inbound, marks)
    for dialog, last, (inbound, marks) in itertools.product(
        DIALOGS,
        (None, "in", "out"),
        ((0, {}), (2, {}), (2, {"ann": 2}), (3, {"ann": 2, "bob": 3}), (1, {"bob": 1})),
    )
]


def test_each_counter_by_example() -> None:
    waiting = WorkFacts(DialogFacts("demo", "unassigned"), "in", 2, {"bob": 2})
    assert matches(waiting, "ann") == {
        "unassigned": True,
        "unanswered": True,
        "unread": True,  # bob's reading is his own
        "mine_active": False,
    }
    answered = WorkFacts(DialogFacts("demo", "active", "bob", ("ann",)), "out", 2, {"ann": 2})
    assert matches(answered, "ann") == {
        "unassigned": False,
        "unanswered": False,
        "unread": False,
        "mine_active": True,  # a participant is on it too
    }
    closed = WorkFacts(DialogFacts("demo", "closed", "ann"), "in", 1, {})
    assert closed.unread_for("ann") == 1
    assert not any(matches(closed, "ann").values())  # closing ends the wait, and the work


def test_display_caps_at_99() -> None:
    assert [display(n) for n in (0, 99, 100, 5000)] == ["0", "99", "99+", "99+"]
    body = counters_json({"unassigned": 1, "unanswered": 0, "unread": 120, "mine_active": 2})
    assert body["unread"] == 120 and body["unread_display"] == "99+"
    assert body["unassigned_display"] == "1"


async def test_the_sql_counts_agree_with_python(engine: AsyncEngine) -> None:
    table = Table(
        f"counter_cases_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("line_id", Text),
        Column("status", Text),
        Column("assignee_id", Text),
        Column("participants", ARRAY(Text)),
        Column("last_direction", Text),
        Column("inbound_count", Integer),
        Column("read_marks", JSONB),
        prefixes=["TEMPORARY"],
    )
    columns = WorkColumns.of(table)
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(
            insert(table),
            [
                {
                    "id": i,
                    "line_id": c.dialog.line_id,
                    "status": c.dialog.status,
                    "assignee_id": c.dialog.assignee_id,
                    "participants": list(c.dialog.participants),
                    "last_direction": c.last_direction,
                    "inbound_count": c.inbound_count,
                    "read_marks": dict(c.read_marks),
                }
                for i, c in enumerate(CASES)
            ],
        )
        for scope in SCOPES:
            row = (await conn.execute(count_query(scope, columns))).one()
            assert dict(row._mapping) == count(scope, CASES), scope
            # Each condition alone, per dialog: the list filters use them one by one.
            for name, condition in columns.conditions(scope.operator_id).items():
                found = set(
                    (
                        await conn.execute(
                            select(table.c.id).where(condition, columns.visible_to(scope))
                        )
                    ).scalars()
                )
                expected = {
                    i
                    for i, c in enumerate(CASES)
                    if scope.can_see(c.dialog) and matches(c, scope.operator_id)[name]
                }
                assert found == expected, (scope, name)
