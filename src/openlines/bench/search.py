"""`openlines bench search`: the dialog list, its filters and full-text `q=` on a big read model.

100,000 dialogs and 1,000,000 messages (by default) are loaded into dialogs' read model with
COPY, shaped as the projection shapes them (the search vectors are computed by Postgres from
the messages, with the projection's own configuration). Then each query the operator API runs
is timed through the API's own query functions (`queries.list_dialogs`, `queries.counters`),
one connection checkout per query as a request has, beside a same-run baseline: the
primary-key lookup of one dialog (`GET /api/v1/dialogs/{id}`'s query). The cases take turns,
round by round, so that the machine's other load weighs on all of them alike.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.bench.infra import Infra
from openlines.dialogs import queries
from openlines.dialogs.app import MIGRATIONS
from openlines.dialogs.queries import ListQuery
from openlines.events.lines import LinesConfig
from openlines.kit.access import Scope
from openlines.kit.db.engine import create_engine
from openlines.kit.db.migrate import migrate
from openlines.kit.http.auth import Principal

SCHEMA = "bench_search"
LINES = 10
OPERATORS = 50
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Timing:
    name: str
    samples_ms: list[float]
    found: float
    """Mean rows on the page (or counted), to show the query was not trivially empty."""

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[98]


@dataclass(frozen=True)
class SearchReport:
    dialogs: int
    messages: int
    load_seconds: float
    timings: list[Timing]

    @property
    def baseline(self) -> Timing:
        return self.timings[0]


# -- the data ------------------------------------------------------------------------------


def _words(rng: random.Random, count: int) -> list[str]:
    syllables = [c + v for c in "bdgklmnprstvz" for v in "aeiou"]
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(found)


@dataclass(frozen=True)
class Corpus:
    vocabulary: list[str]
    cum_weights: list[float]
    first_names: list[str]
    last_names: list[str]


def _corpus(rng: random.Random) -> Corpus:
    vocabulary = _words(rng, 3000)
    rng.shuffle(vocabulary)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf: a few words are common
    cum, total = [], 0.0
    for w in weights:
        total += w
        cum.append(total)
    names = _words(rng, 500)
    return Corpus(
        vocabulary, cum, [n.title() for n in names[:200]], [n.title() for n in names[200:]]
    )


def lines_config() -> LinesConfig:
    return LinesConfig.model_validate(
        {
            "operators": [{"id": f"op{i}"} for i in range(OPERATORS)]
            + [{"id": "sue", "role": "supervisor"}],
            "lines": [
                {
                    "id": f"line{n}",
                    "channels": [{"id": f"tg-{n}", "type": "telegram"}],
                    "operators": [
                        f"op{i}" for i in range(OPERATORS) if n in (i % LINES, (i + 3) % LINES)
                    ],
                }
                for n in range(LINES)
            ],
        }
    )


def _operators_of(line: int) -> list[str]:
    return [f"op{i}" for i in range(OPERATORS) if line in (i % LINES, (i + 3) % LINES)]


@dataclass
class Seeded:
    order_numbers: list[str]
    names: list[str]
    dialog_ids: list[uuid.UUID]


def _rows(
    rng: random.Random, corpus: Corpus, dialogs: int, per_dialog: int, seeded: Seeded
) -> Iterator[tuple[str, str]]:
    """(dialog row, its messages' rows) in COPY's text format."""
    now = datetime.now(UTC)
    for d in range(dialogs):
        dialog_id = uuid.UUID(int=rng.getrandbits(128))
        line = rng.randrange(LINES)
        first, last = rng.choice(corpus.first_names), rng.choice(corpus.last_names)
        name = f"{first} {last}"
        external_id = str(10**8 + d)
        roll = rng.random()
        status = (
            "unassigned"
            if roll < 0.10
            else "active"
            if roll < 0.30
            else "spam"
            if roll < 0.32
            else "closed"
        )
        assignee = None if status == "unassigned" else rng.choice(_operators_of(line))
        created = now - timedelta(seconds=rng.randrange(180 * 86400))
        at = created
        messages = io.StringIO()
        inbound = 0
        last_text, last_direction = "", "in"
        for seq in range(per_dialog):
            at += timedelta(seconds=rng.randrange(5, 600))
            direction = "in" if (seq % 2 == 0 or assignee is None) else "out"
            words = rng.choices(
                corpus.vocabulary, cum_weights=corpus.cum_weights, k=rng.randint(5, 12)
            )
            if rng.random() < 0.02:
                order = f"ord{rng.randrange(10**7):07d}"
                words.insert(rng.randrange(len(words)), order)
                if len(seeded.order_numbers) < 1000 and seq < per_dialog - 1:
                    seeded.order_numbers.append(order)  # in an older message, not the last
            body = " ".join(words)
            inbound += direction == "in"
            last_text, last_direction = body, direction
            author = assignee if direction == "out" else "\\N"
            messages.write(
                f"{uuid.UUID(int=rng.getrandbits(128))}\t{dialog_id}\t{seq + 2}\t{direction}\t"
                f"{author}\t{body}\t[]\ttg-{line}:{external_id}\t{at.isoformat()}\tf\n"
            )
        open_ = status in ("unassigned", "active")
        waiting = at.isoformat() if open_ and last_direction == "in" else "\\N"
        marks = {assignee: inbound - rng.randint(0, 2) * (status == "active")} if assignee else {}
        pinned = assignee if assignee and rng.random() < 0.01 else "\\N"
        if d % 100 == 0:
            seeded.names.append(name)
            seeded.dialog_ids.append(dialog_id)
        row = "\t".join(
            [
                str(dialog_id),
                str(per_dialog + 2),
                f"line{line}",
                f"tg-{line}",
                "telegram",
                f"tg-{line}:{external_id}",
                status,
                name,
                external_id,
                f"{first.lower()}_{last.lower()}",
                f"+38050{rng.randrange(10**7):07d}",
                f"{first.lower()}.{last.lower()}@example.com",
                assignee or "\\N",
                "{}",
                name,
                last_text,
                last_direction,
                at.isoformat(),
                str(inbound),
                json.dumps(marks),
                pinned,
                waiting,
                created.isoformat(),
                at.isoformat(),
            ]
        )
        yield row + "\n", messages.getvalue()


_DIALOG_COLUMNS = (
    "id, version, line_id, channel_id, channel_type, conversation_key, status, customer_name,"
    " customer_external_id, customer_username, customer_phone, customer_email, assignee_id,"
    " participants, title, last_message_text, last_message_direction, last_message_at,"
    " inbound_count, read_marks, pinned_to, waiting_since, created_at, updated_at"
)
_MESSAGE_COLUMNS = (
    "message_id, dialog_id, seq, direction, author_id, text, attachments, conversation_key,"
    " sent_at, deleted"
)
# What the projection folds message by message, computed for all at once (the same
# configuration and directions as `search`).
_FILL_SEARCH = """
UPDATE dialogs d SET messages_search = m.v
FROM (SELECT dialog_id, strip(to_tsvector('simple', string_agg(text, ' ' ORDER BY seq))) AS v
      FROM messages WHERE direction IN ('in', 'out', 'note') AND NOT deleted
      GROUP BY dialog_id) m
WHERE m.dialog_id = d.id
"""


async def _load(engine: AsyncEngine, dialogs: int, per_dialog: int, rng: random.Random) -> Seeded:
    corpus = _corpus(rng)
    seeded = Seeded([], [], [])
    batch = 10_000
    rows = _rows(rng, corpus, dialogs, per_dialog, seeded)
    async with engine.begin() as conn:
        pg = await _driver(conn)
        for _ in range(0, dialogs, batch):
            dialog_text, message_text = io.StringIO(), io.StringIO()
            for _, (dialog_row, message_rows) in zip(range(batch), rows, strict=False):
                dialog_text.write(dialog_row)
                message_text.write(message_rows)
            async with pg.cursor().copy(f"COPY dialogs ({_DIALOG_COLUMNS}) FROM STDIN") as copy:
                await copy.write(dialog_text.getvalue().encode())
            async with pg.cursor().copy(f"COPY messages ({_MESSAGE_COLUMNS}) FROM STDIN") as copy:
                await copy.write(message_text.getvalue().encode())
        await conn.execute(text(_FILL_SEARCH))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE dialogs"))
        await conn.execute(text("VACUUM ANALYZE messages"))
    return seeded


async def _driver(conn: AsyncConnection) -> Any:  # psycopg.AsyncConnection
    raw = await conn.get_raw_connection()
    assert raw.driver_connection is not None
    return raw.driver_connection


# -- the measurements ----------------------------------------------------------------------


Query = Callable[[AsyncConnection, int], Awaitable[int]]


async def _time_interleaved(
    engine: AsyncEngine, rounds: int, cases: list[tuple[str, Query]]
) -> list[Timing]:
    """Every case once per round, in turn, so that a load spike from elsewhere on this shared
    machine lands on all of them (the baseline too) rather than on whichever ran then."""
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    found: dict[str, int] = dict.fromkeys(samples, 0)
    for i in range(rounds + 5):
        for name, query in cases:
            began = time.perf_counter()
            async with engine.connect() as conn:
                n = await query(conn, i)
            if i >= 5:  # the first rounds warm the pool and the caches
                samples[name].append(1000 * (time.perf_counter() - began))
                found[name] += n
    return [Timing(name, samples[name], found[name] / rounds) for name, _ in cases]


async def run(
    infra: Infra, *, dialogs: int = 100_000, per_dialog: int = 10, rounds: int = 200
) -> SearchReport:
    migrate(infra.database_url, SCHEMA, MIGRATIONS)
    engine = create_engine(infra.database_url, SCHEMA, pool_size=2)
    rng = random.Random(20261130)
    config = lines_config()

    def scope(who: str, role: str = "operator") -> Scope:
        return Scope.of(Principal(who, frozenset({role}), None), config)

    try:
        began = time.perf_counter()
        seeded = await _load(engine, dialogs, per_dialog, rng)
        load_seconds = time.perf_counter() - began
        sue = scope("sue", "supervisor")

        def listing(
            who: Callable[[int], Scope], make: Callable[[int], ListQuery]
        ) -> Callable[[AsyncConnection, int], Awaitable[int]]:
            async def query(conn: AsyncConnection, i: int) -> int:
                now = datetime.now(UTC)
                rows, _ = await queries.list_dialogs(conn, who(i), make(i), config, now)
                return len(rows)

            return query

        def operator(i: int) -> Scope:
            return scope(f"op{i % OPERATORS}")

        async def lookup(conn: AsyncConnection, i: int) -> int:
            dialog_id = seeded.dialog_ids[i % len(seeded.dialog_ids)]
            return int(await queries.get_dialog(conn, dialog_id, sue) is not None)

        common = _corpus(random.Random(20261130)).vocabulary[:20]  # the most frequent words
        cases: list[tuple[str, Query]] = [
            ("baseline: primary-key lookup of one dialog", lookup),
            (
                "list, operator, all tabs (first page of 50)",
                listing(operator, lambda i: ListQuery()),
            ),
            (
                "filtered: operator, unread=true",
                listing(operator, lambda i: ListQuery(unread=True)),
            ),
            (
                "filtered: operator, tab=active&participant=me&sort=waiting",
                listing(
                    operator,
                    lambda i: ListQuery(tab="active", participant_me=True, sort="waiting"),
                ),
            ),
            (
                "filtered: supervisor, line=..&unanswered=true&sort=waiting",
                listing(
                    lambda i: sue,
                    lambda i: ListQuery(line=f"line{i % LINES}", unanswered=True, sort="waiting"),
                ),
            ),
            (
                "filtered: supervisor, sla=breach",
                listing(lambda i: sue, lambda i: ListQuery(sla="breach")),
            ),
            (
                "filtered: supervisor, tab=closed&sort=created&order=asc",
                listing(
                    lambda i: sue, lambda i: ListQuery(tab="closed", sort="created", order="asc")
                ),
            ),
            (
                "q=, supervisor: an order number in an older message",
                listing(
                    lambda i: sue,
                    lambda i: ListQuery(q=seeded.order_numbers[i % len(seeded.order_numbers)]),
                ),
            ),
            (
                "q=, operator: a customer's name, as typed (prefix)",
                listing(operator, lambda i: ListQuery(q=seeded.names[i % len(seeded.names)][:7])),
            ),
            (
                "q=, supervisor: a frequent word's prefix (3 letters)",
                listing(lambda i: sue, lambda i: ListQuery(q=common[i % len(common)][:3])),
            ),
            (
                "q=, supervisor: two words + unanswered=true",
                listing(
                    lambda i: sue,
                    lambda i: ListQuery(
                        q=f"{common[i % 20]} {common[(i + 7) % 20]}", unanswered=True
                    ),
                ),
            ),
        ]

        async def counters_of(
            who: Callable[[int], Scope],
        ) -> Callable[[AsyncConnection, int], Awaitable[int]]:
            async def query(conn: AsyncConnection, i: int) -> int:
                return sum((await queries.counters(conn, who(i))).values())

            return query

        cases.append(("counters, operator", await counters_of(operator)))
        cases.append(("counters, supervisor (every line)", await counters_of(lambda i: sue)))
        timings = await _time_interleaved(engine, rounds, cases)
        return SearchReport(dialogs, dialogs * per_dialog, load_seconds, timings)
    finally:
        await engine.dispose()
