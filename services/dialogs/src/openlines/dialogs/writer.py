"""The write side's entry point: every change to a dialog goes through `DialogWriter.execute`.

The operator API and the consumers alike call it inside their transaction. It is the kit's
stream writer (load, decide, append, retry on conflict, project: see `kit.streamwriter`) for
the Dialog aggregate: two operators taking one dialog at once thus get exactly one success and
one domain error. What is written beside the events, in the same transaction, is the write
side's own lookups (`store.record`) and the read model (`projection.project`). Long dialogs
are loaded from a snapshot plus the events after it. Given the lines config, the writer adds
what a decision's events call for on the line: a close asks the customer for a rating (CSAT),
whichever path closed it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs import store
from openlines.dialogs.domain import Dialog
from openlines.dialogs.domain.state import SNAPSHOT_FORMAT
from openlines.dialogs.projection import project
from openlines.events.envelope import Envelope, EventPayload, utc_now
from openlines.events.lines import LinesConfig
from openlines.events.topics import DIALOGS
from openlines.kit.eventstore import EventStore
from openlines.kit.streamwriter import Aggregate, Loaded, Snapshots, StreamWriter, TooMuchContention

__all__ = ["DIALOG", "Decide", "DialogWriter", "TooMuchContention"]

Decide = Callable[[Dialog], Sequence[EventPayload]]

# A snapshot every 100 events. On a 5,000-message dialog (`openlines bench writer`) a reply
# took ~250 ms replaying the whole stream and ~25 ms from a snapshot, most of it reading the
# snapshot itself (its size grows with the messages); every 50 to 400 measured alike.
SNAPSHOT_EVERY = 100


def _evolve(dialog: Dialog, env: Envelope) -> Dialog:
    dialog.apply(env.payload, env.occurred_at)
    return dialog


async def _record(conn: AsyncConnection, dialog: Dialog, envelopes: Sequence[Envelope]) -> None:
    await store.record(conn, dialog, envelopes)  # the write side's lookups
    await project(conn, dialog, envelopes)  # the read model


def dialog_aggregate(snapshot_every: int | None = SNAPSHOT_EVERY) -> Aggregate[Dialog]:
    """The Dialog as the kit writer sees it (`snapshot_every` None: no snapshots)."""
    return Aggregate(
        topic=DIALOGS,
        initial=lambda stream_id: Dialog(UUID(stream_id)),
        evolve=_evolve,
        project=_record,
        snapshots=(
            Snapshots(
                every=snapshot_every,
                state_version=SNAPSHOT_FORMAT,
                to_json=Dialog.to_snapshot,
                from_json=Dialog.from_snapshot,
            )
            if snapshot_every
            else None
        ),
    )


DIALOG = dialog_aggregate()


class DialogWriter:
    def __init__(
        self,
        store: EventStore,
        *,
        attempts: int = 8,
        aggregate: Aggregate[Dialog] = DIALOG,
        lines: LinesConfig | None = None,
    ) -> None:
        self.store = store
        self.stream = StreamWriter(store, aggregate, attempts=attempts)
        self.lines = lines

    async def load(self, conn: AsyncConnection, dialog_id: UUID) -> Dialog:
        return (await self.stream.load(conn, str(dialog_id))).state

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
        """Apply `decide` to the current dialog and record what it returns (see
        `StreamWriter.execute`; `loaded` is the dialog as the caller just loaded it in this
        transaction). Domain errors from `decide` propagate, before anything was written."""
        stream_id = str(dialog_id)
        done = await self.stream.execute(
            conn,
            stream_id,
            self._with_follow_ups(decide),
            cause=cause,
            id_seed=id_seed,
            loaded=Loaded(str(loaded.id), loaded, loaded.version) if loaded is not None else None,
        )
        return done.state

    def _with_follow_ups(self, decide: Decide) -> Decide:
        lines = self.lines
        if lines is None:
            return decide

        def decide_and_follow(dialog: Dialog) -> Sequence[EventPayload]:
            decided = list(decide(dialog))
            line = lines.line(dialog.line_id) if decided else None
            if line is not None:
                decided += dialog.rating_request_after(decided, line.csat, now=utc_now())
            return decided

        return decide_and_follow
