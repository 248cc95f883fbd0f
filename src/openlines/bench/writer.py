"""`openlines bench writer`: an operator's reply on a dialog of thousands of messages.

Every command loads its dialog before deciding. Without snapshots that load replays the whole
stream; with them it reads the latest snapshot and replays only the events after it. Both are
measured in the same run on the same dialog, beside two baselines: the primary-key lookup of
the dialog's read-model row, in a transaction of its own, as a reply's is; and a reply on a
dialog of 10 messages (what a reply costs when loading is cheap).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from openlines.bench.infra import Infra
from openlines.dialogs.app import MIGRATIONS
from openlines.dialogs.domain import NO_LIMIT, Dialog
from openlines.dialogs.projection import project
from openlines.dialogs.tables import dialogs
from openlines.dialogs.writer import SNAPSHOT_EVERY, DialogWriter, dialog_aggregate
from openlines.events.catalog import (
    ChannelType,
    Customer,
    DialogOpened,
    Direction,
    MessageAppended,
)
from openlines.events.envelope import Envelope, EventPayload, utc_now
from openlines.events.topics import DIALOGS
from openlines.kit.db.engine import create_engine
from openlines.kit.db.migrate import migrate
from openlines.kit.eventstore import EventStore

SCHEMA = "bench_writer"


@dataclass(frozen=True)
class Timing:
    name: str
    samples_ms: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def worst(self) -> float:
        return max(self.samples_ms)


@dataclass(frozen=True)
class WriterReport:
    messages: int
    snapshot_every: int
    timings: list[Timing]


def _history(dialog_id: uuid.UUID, messages: int) -> list[EventPayload]:
    customer = Customer(name="Bench Customer", external_id="writer")
    key = f"tg-bench:{dialog_id}"
    now = utc_now()
    opened: list[EventPayload] = [
        DialogOpened(
            dialog_id=dialog_id,
            line_id="demo",
            channel_id="tg-bench",
            channel_type=ChannelType.TELEGRAM,
            conversation_key=key,
            customer=customer,
            external_user_id="writer",
            external_chat_id="writer",
            title="Bench Customer",
        )
    ]
    return opened + [
        MessageAppended(
            dialog_id=dialog_id,
            message_id=uuid.uuid4(),
            direction=Direction.IN,
            text=f"message {i}: hello, I would like to know where my order is",
            external_message_id=str(i),
            channel_id="tg-bench",
            conversation_key=key,
            sent_at=now,
        )
        for i in range(messages)
    ]


async def _seed(engine: AsyncEngine, store: EventStore, messages: int) -> uuid.UUID:
    """A dialog of `messages` customer messages, written in bulk (not command by command)."""
    dialog_id = uuid.uuid4()
    history = _history(dialog_id, messages)
    dialog = Dialog(dialog_id)
    appended: list[Envelope] = []
    async with engine.begin() as conn:
        for start in range(0, len(history), 500):
            chunk = history[start : start + 500]
            appended += await store.append(conn, str(dialog_id), start, chunk, topic=DIALOGS)
        for env in appended:
            dialog.apply(env.payload, env.occurred_at)
        await project(conn, dialog, appended)
    return dialog_id


async def _time(rounds: int, step: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        await step()
        samples.append(1000 * (time.perf_counter() - began))
    return samples


async def run(infra: Infra, *, messages: int = 5000, replies: int = 40) -> WriterReport:
    migrate(infra.database_url, SCHEMA, MIGRATIONS)
    engine = create_engine(infra.database_url, SCHEMA, pool_size=2)
    store = EventStore(SCHEMA, producer="bench")
    try:
        dialog_id = await _seed(engine, store, messages)
        short_id = await _seed(engine, store, 10)
        writers = {
            "reply, full replay (no snapshots)": DialogWriter(
                store, aggregate=dialog_aggregate(None)
            ),
            f"reply, snapshot every {SNAPSHOT_EVERY} events": DialogWriter(store),
        }

        def reply_with(
            writer: DialogWriter, on: uuid.UUID = dialog_id
        ) -> Callable[[], Awaitable[object]]:
            async def reply() -> None:
                async with engine.begin() as conn:
                    await writer.execute(
                        conn,
                        on,
                        lambda d: d.reply(
                            "ann",
                            "on its way",
                            message_id=uuid.uuid4(),
                            client_message_id=uuid.uuid4().hex,
                            now=utc_now(),
                            max_text_length=4096,
                            load=NO_LIMIT,
                        ),
                    )

            return reply

        async def lookup() -> None:
            async with engine.begin() as conn:
                (await conn.execute(select(dialogs).where(dialogs.c.id == dialog_id))).one()

        timings = [Timing("baseline: primary-key lookup", await _time(replies, lookup))]
        short = reply_with(DialogWriter(store), short_id)
        await short()
        timings.append(
            Timing("baseline: reply on a dialog of 10 messages", await _time(replies, short))
        )
        for name, writer in writers.items():
            await reply_with(writer)()  # warm up (and, with snapshots, take the first one)
            timings.append(Timing(name, await _time(replies, reply_with(writer))))
        return WriterReport(messages, SNAPSHOT_EVERY, timings)
    finally:
        await engine.dispose()
