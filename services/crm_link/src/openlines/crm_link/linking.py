"""crm-link's use cases: link each opened dialog to its customer (and lead), create leads.

Each runs in the caller's transaction through the kit's stream writer: load the customer
stream, decide (domain), append with the expected version, project. When another writer moved
the stream meanwhile (a concurrent dialog of the same customer, a racing POST), it reloads and
decides again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.crm_link import domain, projection
from openlines.crm_link.domain import Customer, DialogFacts
from openlines.events.catalog import DialogLinkedToCrm, DialogOpened, MessageAppended
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.lines import LinesConfig
from openlines.events.topics import CRM
from openlines.kit.access import FACT_EVENTS
from openlines.kit.eventstore import EventStore
from openlines.kit.streamwriter import Aggregate, StreamWriter
from openlines.kit.subscription import Subscription

Decision = Callable[[Customer | None], list[EventPayload]]


async def _project(
    conn: AsyncConnection, _: Customer | None, envelopes: Sequence[Envelope]
) -> None:
    await projection.apply(conn, envelopes)


# The customer stream: short (an identity, its leads and linked dialogs), so no snapshots.
CUSTOMER: Aggregate[Customer | None] = Aggregate(
    topic=CRM,
    initial=lambda _: None,
    evolve=lambda state, env: domain.evolve(state, env.payload),
    project=_project,
)


class CrmLink:
    def __init__(self, lines: LinesConfig, event_store: EventStore, *, attempts: int = 5) -> None:
        self.lines = lines
        self.event_store = event_store
        self.customers = StreamWriter(event_store, CUSTOMER, attempts=attempts)

    def subscribe(self, sub: Subscription) -> None:
        """Openings, the messages that count as activity (not notes or system lines), and
        what moves the dialog's access (assignments, participants, close, reopen)."""
        sub.on(DialogOpened)(self.on_opened)
        sub.on(MessageAppended, when=lambda m: m.direction in projection.ACTIVITY)(self.on_activity)
        sub.on(*(kind for kind in FACT_EVENTS if kind is not DialogOpened))(self.on_fact)

    async def on_opened(self, conn: AsyncConnection, env: Envelope[DialogOpened]) -> None:
        await self.link_dialog(conn, env, env.payload)

    @staticmethod
    async def on_activity(conn: AsyncConnection, env: Envelope[MessageAppended]) -> None:
        await projection.touch_dialog(conn, env.payload)

    @staticmethod
    async def on_fact(conn: AsyncConnection, env: Envelope) -> None:
        await projection.follow_dialog(conn, env.payload)

    async def link_dialog(self, conn: AsyncConnection, env: Envelope, opened: DialogOpened) -> None:
        dialog = dialog_facts(opened)
        await projection.record_dialog(conn, dialog, env.occurred_at)
        line = self.lines.line(dialog.line_id)
        auto_lead = line.auto_lead if line is not None else False
        await self._decide_and_append(
            conn,
            dialog.customer_id,
            lambda state: domain.on_dialog_opened(state, dialog, auto_lead),
            cause=env,
        )

    async def create_lead(
        self, conn: AsyncConnection, dialog: DialogFacts, actor_id: str, title: str | None
    ) -> UUID:
        """The lead the dialog is now linked to: a new one, or the customer's existing one.
        Raises domain.AlreadyLinked when the dialog has a lead (maybe since a moment ago)."""
        decided: list[EventPayload] = []

        def decide(state: Customer | None) -> list[EventPayload]:
            decided[:] = domain.create_lead(state, dialog, actor_id, title)  # the last attempt's
            return list(decided)

        await self._decide_and_append(conn, dialog.customer_id, decide, cause=None)
        link = next(e for e in decided if isinstance(e, DialogLinkedToCrm))
        assert link.lead_id is not None
        return link.lead_id

    async def _decide_and_append(
        self,
        conn: AsyncConnection,
        customer_id: UUID,
        decide: Decision,
        cause: Envelope | None,
    ) -> None:
        await self.customers.execute(conn, str(customer_id), decide, cause=cause)


def dialog_facts(opened: DialogOpened) -> DialogFacts:
    return DialogFacts(
        dialog_id=opened.dialog_id,
        line_id=opened.line_id,
        channel_id=opened.channel_id,
        channel_type=opened.channel_type,
        external_user_id=opened.external_user_id,
        customer_name=opened.customer.name,
        title=opened.title,
    )


async def project_dialog_event(conn: AsyncConnection, env: Envelope) -> None:
    """The read-model half of what the DIALOGS consumer does with `env`, deciding nothing
    (no customer stream is appended to): what `openlines replay crm-link` runs. The links
    themselves come from the CRM topic (`projection.apply`)."""
    event = env.payload
    if isinstance(event, DialogOpened):
        await projection.record_dialog(conn, dialog_facts(event), env.occurred_at)
    elif isinstance(event, MessageAppended):
        if event.direction in projection.ACTIVITY:
            await projection.touch_dialog(conn, event)
    elif isinstance(event, FACT_EVENTS):
        await projection.follow_dialog(conn, event)
