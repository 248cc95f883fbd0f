"""The suite's read models, each replayed through its service's own projection.

- dialogs: `projection.project`, the function every dialog write calls, fed by the Dialog
  aggregate folded from `openlines.dialogs.v1` (the aggregate is what the projection reads).
- crm-link: the dialog facts from `openlines.dialogs.v1` first, then the customer streams of
  `openlines.crm.v1` (`projection.apply`, what every CRM append calls).
- notify: `StreamProjection.handle` over `openlines.dialogs.v1`, with a hub that has no
  sessions (history is never pushed). Routing's topic is left out on purpose: it is
  transport-only (not in any event store, so gone after a restart of the embedded broker), and
  the view never needs it: `DialogQueued` only creates a view that `DialogOpened` creates
  first.

- analytics: `projection.apply_batch` over `openlines.dialogs.v1` and `openlines.routing.v1`
  (its SLA markers).

Routing keeps no read model derived from events alone (presence, capacity and the queue are
its own state, changed by its own decisions), so there is nothing of it to replay.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import BindParameter, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.visitors import replacement_traverse

from openlines.events.envelope import Envelope
from openlines.events.topics import CRM, DIALOGS, ROUTING
from openlines.kit.eventstore import EventStore
from openlines.kit.replay import BatchHandler
from openlines.replay.batching import StatementBatcher, WrittenKeys, copy_rows
from openlines.replay.registry import (
    ENTRY_POINT_GROUP,
    Pass,
    ReadModel,
    RebuildContext,
    register,
    registered,
)

# -- dialogs -----------------------------------------------------------------------------------


class DialogsReplay:
    """Folds each dialog's events into its aggregate (kept between batches) and projects the
    batch's events of each dialog with the live projection, once per dialog per batch.

    The copy is fresh and only this handler writes it (the rebuild, then the switch's tail),
    so it writes in bulk: the timeline rows go in by COPY, their conflicts settled against
    the message ids written so far; the dialog rows, which the projection upserts once per
    dialog per batch, are written once per dialog by `finish`, from the aggregate the last
    upsert would have written, with the search vector the projection recomputes from the
    timeline (`search.recompute`), which is what its batches folded in (see `finish`).
    """

    def __init__(self, context: RebuildContext) -> None:
        from openlines.dialogs.domain import Dialog

        self._new = Dialog
        self.context = context
        self.dialogs: dict[str, object] = {}
        self.written: WrittenKeys = {}
        self.dirty: set[str] = set()
        """Dialogs whose row `finish` has to write."""
        self.rows: set[str] = set()
        """Dialogs whose row the copy has."""

    async def __call__(self, conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        from openlines.dialogs.projection import UPSERT_DIALOG, project
        from openlines.dialogs.search import RECOMPUTE_MESSAGES

        by_stream: dict[str, list[Envelope]] = {}
        for env in envelopes:
            by_stream.setdefault(env.stream_id, []).append(env)
        batcher = StatementBatcher(conn, self.written, deferred=(UPSERT_DIALOG, RECOMPUTE_MESSAGES))
        for stream_id, batch in by_stream.items():
            dialog = self.dialogs.get(stream_id)
            if dialog is None:
                dialog = self.dialogs[stream_id] = await self._start(stream_id, batch[0])
            # Versions, not only event ids: a restored topic may repeat what the relay sent.
            fresh = [env for env in batch if env.stream_version > dialog.version]  # type: ignore[attr-defined]
            for env in fresh:
                dialog.apply(env.payload, env.occurred_at)  # type: ignore[attr-defined]
            if fresh:
                await project(batcher.stream(), dialog, fresh)  # type: ignore[arg-type]
                self.dirty.add(stream_id)
        await batcher.flush()

    async def finish(self, conn: AsyncConnection) -> None:
        """Write the rows of the dialogs changed since the last call.

        The row is `dialog_row` of the aggregate, as the projection's last upsert writes it.
        Its messages vector is recomputed from the timeline, as the projection does after an
        edit or a deletion: the words of every searched message, which is what the
        projection's upserts fold in one batch at a time (positions stripped, words as a
        set; the checksum compare of a rebuild with the live model holds them to it)."""
        from openlines.dialogs.projection import dialog_row
        from openlines.dialogs.tables import dialogs

        if not self.dirty:
            return
        ids = sorted(self.dirty)
        again = [uuid.UUID(d) for d in ids if d in self.rows]
        if again:
            await conn.execute(dialogs.delete().where(dialogs.c.id.in_(again)))
        rows = [dialog_row(self.dialogs[d]) for d in ids]  # type: ignore[arg-type]
        await copy_rows(conn, dialogs, list(rows[0]), rows)
        # A fresh table has no statistics yet: without them the planner scans the whole
        # timeline once per dialog instead of using its (dialog_id, seq) index.
        await conn.execute(text("ANALYZE messages"))
        await conn.execute(_recompute_many(), {"ids": [row["id"] for row in rows]})
        self.rows.update(ids)
        self.dirty.clear()

    async def _start(self, stream_id: str, first: Envelope) -> object:
        dialog = self._new(uuid.UUID(stream_id))
        if first.stream_version > 1:
            # A replay --from a time starts mid-stream: the aggregate needs the history before
            # it (the timeline then holds what happened since that time).
            async with self.context.live.connect() as conn:
                before = await EventStore("dialogs", "replay").load(conn, stream_id)
            for env in before:
                if env.stream_version < first.stream_version:
                    dialog.apply(env.payload, env.occurred_at)
        return dialog


@functools.cache
def _recompute_many() -> Any:
    """`search.RECOMPUTE_MESSAGES` for the dialogs in `:ids` at once: the same statement,
    its dialog id parameter replaced by the row's own id."""
    from openlines.dialogs.search import RECOMPUTE_MESSAGES
    from openlines.dialogs.tables import dialogs

    def by_row(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key == "d_id":
            return dialogs.c.id
        return None

    statement: Any = replacement_traverse(RECOMPUTE_MESSAGES, {}, by_row)  # type: ignore[call-overload]
    return statement.where(dialogs.c.id == any_(bindparam("ids", type_=ARRAY(PgUUID))))


_LIVE_VERSIONS = text("SELECT id, version FROM dialogs")


async def dialogs_catch_up(conn: AsyncConnection, new_schema: str) -> int:
    """Under the switch's lock: every dialog whose live row is ahead of the new copy (events
    committed after the topics were read, or not relayed yet) is projected from the event
    store into the new copy, after the version the copy has."""
    from openlines.dialogs.domain import Dialog
    from openlines.dialogs.projection import project
    from openlines.dialogs.tables import dialogs

    live = {row.id: row.version for row in await conn.execute(_LIVE_VERSIONS)}
    await conn.execution_options(schema_translate_map={None: new_schema})
    try:
        rebuilt = {
            row.id: row.version
            for row in await conn.execute(select(dialogs.c.id, dialogs.c.version))
        }
    finally:
        await conn.execution_options(schema_translate_map=None)
    behind = [d for d, version in live.items() if rebuilt.get(d, 0) < version]
    store = EventStore("dialogs", "replay")
    for dialog_id in behind:
        history = await store.load(conn, str(dialog_id))
        dialog = Dialog.replay(dialog_id, ((e.payload, e.occurred_at) for e in history))
        missing = [e for e in history if e.stream_version > rebuilt.get(dialog_id, 0)]
        await conn.execution_options(schema_translate_map={None: new_schema})
        try:
            await project(conn, dialog, missing)
        finally:
            await conn.execution_options(schema_translate_map=None)
    return len(behind)


def _dialogs_replay(context: RebuildContext) -> BatchHandler:
    return DialogsReplay(context)


def _dialog_tables() -> tuple[str, ...]:
    from openlines.dialogs.tables import read_model

    return tuple(t.name for t in read_model.sorted_tables)


# -- crm-link ----------------------------------------------------------------------------------


def _crm_dialog_facts(_: RebuildContext) -> BatchHandler:
    from openlines.crm_link.linking import project_dialog_event

    async def handle(conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        for env in envelopes:
            await project_dialog_event(conn, env)

    return handle


def _crm_customers(_: RebuildContext) -> BatchHandler:
    from openlines.crm_link import projection

    return projection.apply


def _crm_tables() -> tuple[str, ...]:
    from openlines.crm_link.tables import metadata

    return tuple(t.name for t in metadata.sorted_tables)


# -- notify ------------------------------------------------------------------------------------


def _notify_views(_: RebuildContext) -> BatchHandler:
    from openlines.events.lines import load_lines
    from openlines.kit.settings import KitSettings
    from openlines.notify.projection import project_view
    from openlines.notify.visitors import VisitorHub, VisitorProjection

    # The widget transcripts too (which channels are widgets: the lines config).
    transcripts = VisitorProjection(VisitorHub(), load_lines(KitSettings().lines_file), 0.0)

    async def handle(conn: AsyncConnection, envelopes: Sequence[Envelope]) -> None:
        for env in envelopes:
            await project_view(conn, env)  # the views only: a rebuild never pushes
            await transcripts.handle(conn, env)
        transcripts._pending.clear()

    return handle


# -- analytics ---------------------------------------------------------------------------------


def _analytics_facts(_: RebuildContext) -> BatchHandler:
    from openlines.analytics.projection import apply_batch

    return apply_batch


def _analytics_tables() -> tuple[str, ...]:
    from openlines.analytics.tables import metadata

    return tuple(t.name for t in metadata.sorted_tables)


register(
    ReadModel(
        name="dialogs",
        schema="dialogs",
        tables=_dialog_tables(),
        passes=(Pass((DIALOGS,), _dialogs_replay),),
        catch_up=dialogs_catch_up,
    )
)
register(
    ReadModel(
        name="crm-link",
        schema="crm_link",
        tables=_crm_tables(),
        passes=(Pass((DIALOGS,), _crm_dialog_facts), Pass((CRM,), _crm_customers)),
    )
)
register(
    ReadModel(
        name="notify",
        schema="notify",
        tables=("dialog_views", "widget_messages"),
        passes=(Pass((DIALOGS,), _notify_views),),
    )
)
# The SLA markers come from routing's topic, which is transport-only: after a restart of the
# embedded broker a rebuild has the dialogs' metrics but not the SLA counts from before it.
register(
    ReadModel(
        name="analytics",
        schema="analytics",
        tables=_analytics_tables(),
        passes=(Pass((DIALOGS, ROUTING), _analytics_facts),),
    )
)


def read_models() -> dict[str, ReadModel]:
    """Every known read model: the built-in ones above and those of installed entry points."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in registered():
            loaded = ep.load()
            if isinstance(loaded, ReadModel):
                register(loaded)
    return dict(sorted(registered().items()))
