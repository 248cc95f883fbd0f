"""The write side: load a dialog, decide, append and project, retrying on concurrency conflicts.

Every change to a dialog goes through `DialogWriter.execute`, from the operator API and from
the consumers alike, inside the caller's transaction. The append comes first: when another
writer appended first (ConcurrencyConflict), nothing of the attempt was written, the stream is
reloaded and the decision is taken again on the fresh state. Two operators taking one dialog
at once thus get exactly one success and one domain error. The read model is written only
after the append succeeded, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.domain import Dialog
from openlines.dialogs.projection import project
from openlines.events.envelope import Envelope, EventPayload, deterministic_event_id, utc_now
from openlines.events.topics import DIALOGS
from openlines.kit.eventstore import ConcurrencyConflict, DuplicateEvent, EventStore, NewEvent
from openlines.kit.log import get_logger

log = get_logger(__name__)

Decide = Callable[[Dialog], Sequence[EventPayload]]


class TooMuchContention(Exception):
    """Other writers kept winning the race for this dialog; the caller may retry later."""


class DialogWriter:
    def __init__(self, store: EventStore, *, attempts: int = 8) -> None:
        self.store = store
        self.attempts = attempts

    async def load(self, conn: AsyncConnection, dialog_id: UUID) -> Dialog:
        envelopes = await self.store.load(conn, str(dialog_id))
        return Dialog.replay(dialog_id, ((env.payload, env.occurred_at) for env in envelopes))

    async def execute(
        self,
        conn: AsyncConnection,
        dialog_id: UUID,
        decide: Decide,
        *,
        cause: Envelope | None = None,
        id_seed: str | None = None,
        loaded: Dialog | None = None,
    ) -> Dialog:
        """Apply `decide` to the current dialog and record what it returns.

        `id_seed` makes the event ids deterministic (consumers pass their input event's id):
        a second recording of the same effect is then refused by the store and skipped.
        `loaded` is the dialog as the caller just loaded it in this transaction: the first
        attempt decides on it instead of reading the stream again (a retry always reloads).
        Domain errors from `decide` propagate untouched, before anything was written.
        """
        for attempt in range(self.attempts):
            if attempt == 0 and loaded is not None and loaded.id == dialog_id:
                dialog = loaded
            else:
                dialog = await self.load(conn, dialog_id)
            decided = list(decide(dialog))
            if not decided:
                return dialog
            planned = self._plan(dialog, decided, cause, id_seed, utc_now())
            try:
                # The append goes first: when it clashes, nothing at all was written (the
                # store leaves the transaction clean), so no savepoint is needed around it.
                await self.store.append(
                    conn,
                    str(dialog_id),
                    planned[0].stream_version - 1,
                    [NewEvent(e.payload, e.event_id, e.occurred_at) for e in planned],
                    topic=DIALOGS,
                    cause=cause,
                )
            except ConcurrencyConflict:
                log.info("dialog changed concurrently; deciding again", dialog_id=str(dialog_id))
                continue
            except DuplicateEvent:
                log.info("effect already recorded", dialog_id=str(dialog_id), seed=id_seed)
                return await self.load(conn, dialog_id)
            for env in planned:
                dialog.apply(env.payload, env.occurred_at)
            await project(conn, dialog, planned)
            return dialog
        raise TooMuchContention(f"dialog {dialog_id}: too many concurrent writers")

    def _plan(
        self,
        dialog: Dialog,
        decided: list[EventPayload],
        cause: Envelope | None,
        id_seed: str | None,
        now: datetime,
    ) -> list[Envelope]:
        """The envelopes as the store will record them, so the projection can run first."""
        return [
            Envelope.new(
                payload,
                stream_id=str(dialog.id),
                stream_version=dialog.version + i,
                producer=self.store.producer,
                event_id=deterministic_event_id(id_seed, str(i)) if id_seed else None,
                occurred_at=now,
                cause=cause,
            )
            for i, payload in enumerate(decided, start=1)
        ]
