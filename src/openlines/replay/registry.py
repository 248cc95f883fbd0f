"""The read models `openlines replay` can rebuild, by name.

A read model is a set of tables in its service's schema, derived from events alone, and the
projection that keeps them current: the SAME projection the live service runs, handed to the
kit's batched replay. Built-in models are declared in `models.py`, which also lists them all
(`read_models`); another package adds its own with an entry point in the
`openlines.read_models` group that names a `ReadModel` (or calls `register`). Analytics,
for one, declares in its pyproject:

    [project.entry-points."openlines.read_models"]
    analytics = "openlines.analytics.replay:READ_MODEL"
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit.replay import BatchHandler

ENTRY_POINT_GROUP = "openlines.read_models"
"""The entry point group `openlines.replay.models.read_models` loads (it lists them all)."""


@dataclass(frozen=True)
class RebuildContext:
    """What a projection may need besides its batch: the live schema's engine (to read the
    service's event store, e.g. the history before `--from`) and the `--from` time."""

    live: AsyncEngine
    since: datetime | None


@dataclass(frozen=True)
class Pass:
    """Topics replayed together, into one batch handler made fresh for each rebuild.

    Passes run one after another: a model whose events on one topic update rows that another
    topic's events create (crm-link: the CRM links update the dialogs rows) replays the
    creating topic first, since two topics have no order between them.
    """

    topics: tuple[str, ...]
    handler: Callable[[RebuildContext], BatchHandler]


CatchUp = Callable[[AsyncConnection, str], Awaitable[int]]
"""`catch_up(conn, new_schema)`: with the live tables locked on `conn`, bring the new copy
level with what the live model holds beyond the topics (dialogs: events committed but not
published yet). Returns how many streams it touched."""


@dataclass(frozen=True)
class ReadModel:
    name: str
    schema: str
    """The live service schema, where the read model's tables are."""
    tables: tuple[str, ...]
    """Its tables, from the service's own table metadata (never a hand-written copy)."""
    passes: tuple[Pass, ...]
    catch_up: CatchUp | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(t for p in self.passes for t in p.topics)


_REGISTERED: dict[str, ReadModel] = {}


def register(model: ReadModel) -> ReadModel:
    _REGISTERED[model.name] = model
    return model


def registered() -> dict[str, ReadModel]:
    return dict(_REGISTERED)
