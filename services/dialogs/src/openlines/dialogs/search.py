"""Full-text search of the dialog list (`q=`): Postgres FTS, backed by a GIN index.

Each dialog row carries two vectors (`tables.dialogs`): `profile_search`, which Postgres
computes from the title and the customer's name, username, external id, phone and e-mail; and
`messages_search`, every customer, operator and note text of the dialog, folded in by the
dialog's upsert as messages arrive (`SEARCH_TEXTS`, no extra statement) and recomputed from
the timeline when one is edited or deleted, so an old wording stops matching. Together they
are the dialog's document, under one GIN index (`dialogs_search_idx` on
`profile_search || messages_search`), so a query's words may match across them ("olena
parcel"). One document per dialog, not per message: a match is a dialog, so the list query
filters and keyset-pages dialogs directly, with no join or DISTINCT over a million messages.

The 'simple' configuration (no stemming, no stop words) is language-neutral: Ukrainian,
English and names all match as typed. Every word of the query is a prefix (`word:*`), so a
list filters as the operator types; words are ANDed. The query is tokenised by Postgres'
own parser, so "ann@example.com" or "+380501..." are one token there exactly as in the index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    bindparam,
    false,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.tables import dialogs, messages
from openlines.events.catalog import Direction

SEARCHED = (Direction.IN, Direction.OUT, Direction.NOTE)
"""Timeline messages that search finds (system lines describe events, not the customer)."""

SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")

_WORDS = text("SELECT tsvector_to_array(to_tsvector('simple', :q))")

SEARCH_TEXTS = bindparam("search_texts", type_=Text)
"""The texts a projection batch adds to a dialog, joined (the dialog upsert's parameter)."""


def vector_of(texts: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.strip(func.to_tsvector(SIMPLE, texts))


def folded(added: ColumnElement[Any]) -> ColumnElement[Any]:
    """The row's messages vector with `added` folded in (positions stripped: only whether a
    word occurs matters, and the vector stays small however long the dialog)."""
    return func.strip(dialogs.c.messages_search.op("||")(added))


_TIMELINE_VECTOR = (
    select(
        func.strip(
            func.to_tsvector(
                SIMPLE,
                func.coalesce(
                    func.string_agg(
                        messages.c.text, aggregate_order_by(literal_column("' '"), messages.c.seq)
                    ),
                    "",
                ),
            )
        )
    )
    .where(
        messages.c.dialog_id == bindparam("d_id"),
        messages.c.deleted.is_(False),
        messages.c.direction.in_([d.value for d in SEARCHED]),
    )
    .scalar_subquery()
)
RECOMPUTE_MESSAGES = (
    update(dialogs)
    .where(dialogs.c.id == bindparam("d_id"))
    .values(messages_search=_TIMELINE_VECTOR)
)


def is_searched(direction: str, text_: str | None) -> bool:
    return direction in SEARCHED and bool(text_)


async def recompute(conn: AsyncConnection, dialog_id: object) -> None:
    await conn.execute(RECOMPUTE_MESSAGES, {"d_id": dialog_id})


def tsquery_text(words: list[str]) -> str | None:
    """`'ann':* & 'smith':*` (each word quoted as tsquery wants); None: nothing to find."""
    if not words:
        return None
    quoted = ("'" + w.replace("\\", "\\\\").replace("'", "''") + "':*" for w in words)
    return " & ".join(quoted)


async def matching(conn: AsyncConnection, q: str) -> ColumnElement[bool]:
    """The condition on `dialogs` for `q` (one round trip to tokenise it first, so that the
    planner sees a constant tsquery and picks between the GIN index and the sort order)."""
    words = (await conn.execute(_WORDS, {"q": q})).scalar_one()
    query_text = tsquery_text(list(words or []))
    if query_text is None:
        return false()
    # The indexed expression (dialogs_search_idx): both vectors as one document.
    document = dialogs.c.profile_search.op("||")(dialogs.c.messages_search)
    return document.op("@@")(func.to_tsquery(SIMPLE, query_text))
