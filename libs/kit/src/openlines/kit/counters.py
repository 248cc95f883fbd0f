"""An operator's counters, and the list filters they count: one definition, in two forms.

The counters (Bitrix24's and Leeloo's badges) count the dialogs the caller may *list*
(`Scope.can_see`) that are:

- **unassigned**: waiting in a queue (`tab=unassigned`);
- **unanswered**: open, and the last message is the customer's (`unanswered=true`);
- **unread**: open, and holding customer messages the caller has not read (`unread=true`):
  unread is per operator, the customer's messages so far (`inbound_count`) minus the caller's
  read mark (`read_marks[operator]`, set by reading and by replying). A closed dialog keeps its
  `unread_count`, but is no longer work waiting;
- **mine_active**: active with the caller on it, as assignee or participant
  (`tab=active&participant=me`).

Each is written twice: in Python over `WorkFacts` (notify keeps these facts per dialog from
the events) and in SQL over `WorkColumns` (dialogs' read model and notify's view table both
have these columns), for counting in one query and for the list's filters. The two are tested
to agree on one table of cases (tests/test_counters.py), as `visible_where` is `can_see`'s twin.

Every counter is about open dialogs, so the count reads only those (`status` is indexed): the
closed ones, most of any table, are never scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    Text,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, array

from openlines.events.catalog import DialogStatus, Direction
from openlines.events.catalog.common import OPEN_STATUSES
from openlines.kit.access import DialogFacts, Scope, visible_where

COUNTERS = ("unassigned", "unanswered", "unread", "mine_active")
DISPLAY_MAX = 99
"""Above this a badge shows "99+"."""


@dataclass(frozen=True)
class WorkFacts:
    """What the counters need to know of one dialog."""

    dialog: DialogFacts
    last_direction: str | None = None
    """Of the last customer or operator message (notes and system lines do not count)."""
    inbound_count: int = 0
    read_marks: Mapping[str, int] = field(default_factory=dict)

    def unread_for(self, operator_id: str) -> int:
        return self.inbound_count - self.read_marks.get(operator_id, 0)


def matches(item: WorkFacts, operator_id: str) -> dict[str, bool]:
    """Which counters' conditions the dialog meets for `operator_id` (visibility aside)."""
    dialog = item.dialog
    return {
        "unassigned": dialog.status == DialogStatus.UNASSIGNED,
        "unanswered": dialog.is_open and item.last_direction == Direction.IN,
        "unread": dialog.is_open and item.unread_for(operator_id) > 0,
        "mine_active": dialog.status == DialogStatus.ACTIVE and dialog.has_member(operator_id),
    }


def count(scope: Scope, items: Iterable[WorkFacts]) -> dict[str, int]:
    totals = dict.fromkeys(COUNTERS, 0)
    for item in items:
        if not scope.can_see(item.dialog):
            continue
        for name, met in matches(item, scope.operator_id).items():
            totals[name] += met
    return totals


@dataclass(frozen=True)
class WorkColumns:
    """The same facts as columns of a table (`read_marks` a JSONB object operator -> int)."""

    line_id: ColumnElement[Any]
    status: ColumnElement[Any]
    assignee_id: ColumnElement[Any]
    participants: ColumnElement[Any]
    last_direction: ColumnElement[Any]
    inbound_count: ColumnElement[Any]
    read_marks: ColumnElement[Any]

    @classmethod
    def of(cls, table: Table, **renamed: str) -> WorkColumns:
        """`table`'s columns named as the fields, but for the `renamed` ones (field="column")."""
        return cls(**{f.name: table.c[renamed.get(f.name, f.name)] for f in fields(cls)})

    def visible_to(self, scope: Scope) -> ColumnElement[bool]:
        return visible_where(
            scope,
            line_id=self.line_id,
            status=self.status,
            assignee_id=self.assignee_id,
            participants=self.participants,
        )

    def unread_for(self, operator_id: str) -> ColumnElement[int]:
        read = self.read_marks.op("->>")(literal(operator_id)).cast(Integer)
        return self.inbound_count - func.coalesce(read, 0)

    def is_member(self, operator_id: str) -> ColumnElement[bool]:
        """`participant=me`: the caller is on the dialog (assignee or participant). Written
        as `participants @> ARRAY[me]`, which a GIN index serves (`= ANY` is never indexed),
        so "my dialogs" is a bitmap of two indexes, not a scan."""
        me = cast(array([operator_id]), ARRAY(Text))
        return or_(self.assignee_id == operator_id, self.participants.op("@>")(me))

    def unanswered(self) -> ColumnElement[bool]:
        return and_(self.is_open(), self.last_direction == Direction.IN.value)

    def is_open(self) -> ColumnElement[bool]:
        return self.status.in_(sorted(s.value for s in OPEN_STATUSES))

    def unread(self, operator_id: str) -> ColumnElement[bool]:
        return and_(self.is_open(), self.unread_for(operator_id) > 0)

    def conditions(self, operator_id: str) -> dict[str, ColumnElement[bool]]:
        """`matches` in SQL."""
        return {
            "unassigned": self.status == DialogStatus.UNASSIGNED.value,
            "unanswered": self.unanswered(),
            "unread": self.unread(operator_id),
            "mine_active": and_(
                self.status == DialogStatus.ACTIVE.value, self.is_member(operator_id)
            ),
        }


def count_query(scope: Scope, columns: WorkColumns) -> Select[*tuple[Any, ...]]:
    """`count` in SQL: one row with a column per counter, over the table of `columns`."""
    conditions = columns.conditions(scope.operator_id)
    counts = (func.count().filter(conditions[name]).label(name) for name in COUNTERS)
    return select(*counts).where(columns.is_open(), columns.visible_to(scope))


def display(value: int) -> str:
    return f"{DISPLAY_MAX}+" if value > DISPLAY_MAX else str(value)


def counters_json(totals: Mapping[str, int]) -> dict[str, int | str]:
    """`{"unread": 3, "unread_display": "3", ...}`: the number, and the badge's text."""
    body: dict[str, int | str] = {}
    for name in COUNTERS:
        body[name] = totals[name]
        body[f"{name}_display"] = display(totals[name])
    return body
