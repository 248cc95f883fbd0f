"""Read-side queries: the dialog list (tabs, filters, sorts, keyset pages), the caller's
counters, one dialog, its timeline, and the customer's history.

Every row is read for one caller: `unread_count` is theirs (`openlines.kit.counters`), and the
list's filters that are counters (`unanswered`, `unread`, `participant=me`) use the counters'
own SQL, so a badge and the list it opens always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import crm_cards, search
from openlines.dialogs.access import Viewer
from openlines.dialogs.cursors import decode_cursor, encode_cursor
from openlines.dialogs.domain import SlaState
from openlines.dialogs.tables import SEARCH_COLUMNS, dialogs, messages
from openlines.events.catalog import Direction
from openlines.events.lines import LinesConfig, Sla
from openlines.kit.counters import WorkColumns, count_query

TABS = ("unassigned", "active", "closed", "spam", "all")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Sort = Literal["updated", "waiting", "created"]
Order = Literal["asc", "desc"]
DEFAULT_ORDER: dict[str, Order] = {"updated": "desc", "created": "desc", "waiting": "asc"}
"""Newest first, except `waiting`: who has waited longest first."""

# Not waiting sorts after everyone waiting (ascending): a finite stand-in for "never", so that
# the key is never NULL (a NULL breaks row comparisons) and fits a Python datetime in a cursor.
NOT_WAITING = datetime(9999, 12, 31, tzinfo=UTC)
WAITING_KEY = func.coalesce(dialogs.c.waiting_since, NOT_WAITING)
SORT_KEYS: dict[str, ColumnElement[Any]] = {
    "updated": dialogs.c.updated_at,
    "waiting": WAITING_KEY,
    "created": dialogs.c.created_at,
}

# The dialogs table as the counters see it (the same columns as notify's view table).
WORK = WorkColumns.of(dialogs, last_direction="last_message_direction")
_ROW = [c for c in dialogs.c if c.name not in SEARCH_COLUMNS]


def row_columns(viewer: Viewer) -> list[ColumnElement[Any]]:
    """A dialog's columns, with `unread_count` the caller's (never the search vectors)."""
    return [
        *_ROW,
        WORK.unread_for(viewer.operator_id).label("unread_count"),
        *crm_cards.columns(),
    ]


_CURSOR = TypeAdapter(tuple[Sort, Order, AwareDatetime, UUID])


@dataclass(frozen=True)
class Cursor:
    """Position after the last dialog of a page: its sort key and id, for one sort and order
    (a cursor of another sort or order is refused: its position means nothing there)."""

    sort: Sort
    order: Order
    key: datetime
    id: UUID

    def encode(self) -> str:
        return encode_cursor([self.sort, self.order, self.key.isoformat(), str(self.id)])

    @classmethod
    def decode(cls, token: str) -> Cursor:
        return cls(*decode_cursor(token, _CURSOR))


@dataclass(frozen=True)
class ListQuery:
    tab: str = "all"
    line: str | None = None
    channel: str | None = None
    assignee: str | None = None
    q: str | None = None
    unanswered: bool | None = None
    unread: bool | None = None
    pinned: bool | None = None
    participant_me: bool = False
    sla: Literal["warning", "breach"] | None = None
    sort: Sort = "updated"
    order: Order | None = None
    cursor: Cursor | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def direction(self) -> Order:
        return self.order or DEFAULT_ORDER[self.sort]


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The policy's SQL twin of `Scope.can_see`, over the dialogs table."""
    return WORK.visible_to(viewer)


def _flag(condition: ColumnElement[bool], wanted: bool | None) -> ColumnElement[bool] | None:
    if wanted is None:
        return None
    return condition if wanted else not_(condition)


def sla_where(lines: LinesConfig, state: SlaState, now: datetime) -> ColumnElement[bool]:
    """`sla_state(...) == state` in SQL: each line's thresholds as they elapse, a channel's
    own where it overrides them (`Line.sla_seconds`, what the timers and the JSON's
    `sla.state` count with; the defaults for a line missing from the config), against the
    same `now` the JSON's `sla.state` is computed with."""

    def at(thresholds: tuple[float, float]) -> ColumnElement[bool]:
        warning_seconds, breach_seconds = thresholds
        breach_from = now - timedelta(seconds=breach_seconds)
        if state is SlaState.BREACH:
            return dialogs.c.waiting_since <= breach_from
        warning_from = now - timedelta(seconds=warning_seconds)
        return and_(dialogs.c.waiting_since <= warning_from, dialogs.c.waiting_since > breach_from)

    known = [line.id for line in lines.lines]
    cases: list[ColumnElement[bool]] = []
    for line in lines.lines:
        own = [c.id for c in line.channels if c.sla is not None]
        cases += [
            and_(
                dialogs.c.line_id == line.id,
                dialogs.c.channel_id == channel_id,
                at(line.sla_seconds(channel_id)),
            )
            for channel_id in own
        ]
        cases.append(
            and_(
                dialogs.c.line_id == line.id,
                dialogs.c.channel_id.not_in(own),
                at(line.sla_seconds()),
            )
        )
    default = Sla()
    cases.append(
        and_(
            dialogs.c.line_id.not_in(known),
            at((float(default.warning_seconds), float(default.breach_seconds))),
        )
    )
    return or_(*cases)


async def list_dialogs(
    conn: AsyncConnection, viewer: Viewer, query: ListQuery, lines: LinesConfig, now: datetime
) -> tuple[Sequence[Row], Cursor | None]:
    """A page of dialogs the caller may list, in the query's order, and the next page's cursor."""
    me = viewer.operator_id
    conditions: list[ColumnElement[bool] | None] = [visible_to(viewer)]
    if query.tab != "all":
        # For operators "active" is "mine": visibility already limits it to their dialogs.
        conditions.append(dialogs.c.status == query.tab)
    if query.line:
        conditions.append(dialogs.c.line_id == query.line)
    if query.channel:
        conditions.append(dialogs.c.channel_id == query.channel)
    if query.assignee:
        conditions.append(dialogs.c.assignee_id == query.assignee)
    conditions.append(_flag(WORK.unanswered(), query.unanswered))
    conditions.append(_flag(WORK.unread(me), query.unread))
    conditions.append(_flag(dialogs.c.pinned_to == me, query.pinned))
    if query.participant_me:
        conditions.append(WORK.is_member(me))
    if query.sla is not None:
        conditions.append(sla_where(lines, SlaState(query.sla), now))
    if query.q:
        conditions.append(await search.matching(conn, query.q))
    key = SORT_KEYS[query.sort]
    ascending = query.direction == "asc"
    if query.cursor is not None:
        position = tuple_(key, dialogs.c.id)
        after = tuple_(literal(query.cursor.key), literal(query.cursor.id))
        conditions.append(position > after if ascending else position < after)
    order_by = (key.asc(), dialogs.c.id.asc()) if ascending else (key.desc(), dialogs.c.id.desc())
    result = await conn.execute(
        select(*row_columns(viewer), key.label("sort_key"))
        .where(and_(*(c for c in conditions if c is not None)))
        .order_by(*order_by)
        .limit(query.limit + 1)
    )
    rows = result.all()
    if len(rows) <= query.limit:
        return rows, None
    page = rows[: query.limit]
    last = page[-1]
    return page, Cursor(query.sort, query.direction, last.sort_key, last.id)


async def counters(conn: AsyncConnection, viewer: Viewer) -> dict[str, int]:
    row = (await conn.execute(count_query(viewer, WORK))).one()
    return dict(row._mapping)


async def get_dialog(conn: AsyncConnection, dialog_id: UUID, viewer: Viewer) -> Row | None:
    result = await conn.execute(select(*row_columns(viewer)).where(dialogs.c.id == dialog_id))
    return result.first()


async def timeline(conn: AsyncConnection, dialog_id: UUID) -> Sequence[Row]:
    result = await conn.execute(
        select(messages).where(messages.c.dialog_id == dialog_id).order_by(messages.c.seq)
    )
    return result.all()


async def get_message(conn: AsyncConnection, dialog_id: UUID, message_id: UUID) -> Row | None:
    result = await conn.execute(
        select(messages).where(
            messages.c.dialog_id == dialog_id, messages.c.message_id == message_id
        )
    )
    return result.first()


def _same_customer(current: Row) -> ColumnElement[bool]:
    """The CRM customer when known (all their channels), else the same channel account."""
    if current.crm_customer_id is not None:
        return dialogs.c.crm_customer_id == current.crm_customer_id
    return and_(
        dialogs.c.channel_id == current.channel_id,
        dialogs.c.customer_external_id == current.customer_external_id,
    )


_MESSAGE_COUNT = (
    select(func.count())
    .where(
        messages.c.dialog_id == dialogs.c.id,
        messages.c.direction.in_([Direction.IN.value, Direction.OUT.value]),
    )
    .correlate(dialogs)
    .scalar_subquery()
)


async def history(conn: AsyncConnection, current: Row, limit: int) -> Sequence[Row]:
    """The customer's dialogs opened before `current`, newest first. Whoever may read the
    current dialog may read these (Bitrix24's "history including past dialogs")."""
    result = await conn.execute(
        select(
            dialogs.c.id,
            dialogs.c.line_id,
            dialogs.c.channel_id,
            dialogs.c.channel_type,
            dialogs.c.status,
            dialogs.c.title,
            dialogs.c.created_at,
            dialogs.c.closed_at,
            _MESSAGE_COUNT.label("message_count"),
        )
        .where(
            _same_customer(current),
            dialogs.c.id != current.id,
            tuple_(dialogs.c.created_at, dialogs.c.id) < tuple_(current.created_at, current.id),
        )
        .order_by(dialogs.c.created_at.desc(), dialogs.c.id.desc())
        .limit(limit)
    )
    return result.all()


async def in_history_of(conn: AsyncConnection, current: Row, earlier_id: UUID) -> bool:
    found = await conn.execute(
        select(dialogs.c.id).where(
            dialogs.c.id == earlier_id,
            _same_customer(current),
            tuple_(dialogs.c.created_at, dialogs.c.id) < tuple_(current.created_at, current.id),
        )
    )
    return found.first() is not None
