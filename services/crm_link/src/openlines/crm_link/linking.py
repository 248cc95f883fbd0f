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

from openlines.crm_link import cards, domain, projection
from openlines.crm_link.domain import Customer, DialogFacts
from openlines.events.catalog import DialogLinkedToCrm, DialogOpened, MessageAppended
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.lines import LinesConfig
from openlines.events.topics import CRM
from openlines.kit.access import FACT_EVENTS
from openlines.kit.eventstore import EventStore
from openlines.kit.streamwriter import Aggregate, StreamWriter
from openlines.kit.subscription import Subscription

# A decision on the customer stream it is given: the customer meant, or the one it was merged into.
Redirectable = Callable[[UUID, Customer | None], list[EventPayload]]

# Merges chain (A into B, B into C): how many hops a decision follows before giving up.
MAX_HOPS = 16


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
        sub.on(MessageAppended, when=_counts)(self.on_activity)
        sub.on(*(kind for kind in FACT_EVENTS if kind is not DialogOpened))(self.on_fact)

    async def on_opened(self, conn: AsyncConnection, env: Envelope[DialogOpened]) -> None:
        await self.link_dialog(conn, env, env.payload)

    @staticmethod
    async def on_activity(conn: AsyncConnection, env: Envelope[MessageAppended]) -> None:
        await projection.touch_dialog(conn, env.payload)
        await projection.note_mentions(conn, env.payload)

    @staticmethod
    async def on_fact(conn: AsyncConnection, env: Envelope) -> None:
        await projection.follow_dialog(conn, env.payload)

    async def link_dialog(self, conn: AsyncConnection, env: Envelope, opened: DialogOpened) -> None:
        dialog = dialog_facts(opened)
        await projection.record_dialog(conn, dialog, env.occurred_at)
        line = self.lines.line(dialog.line_id)
        auto_lead = line.auto_lead if line is not None else False
        if line is not None and line.link_by_phone and dialog.customer_phone:
            await self._link_by_phone(conn, dialog, env)
        await self.on_customer(
            conn,
            dialog.customer_id,
            lambda customer_id, state: domain.on_dialog_opened(
                state, dialog, auto_lead, customer_id
            ),
            cause=env,
        )

    async def _link_by_phone(
        self, conn: AsyncConnection, dialog: DialogFacts, env: Envelope
    ) -> None:
        """A customer never seen before whose phone is a contact's is that contact's person
        (one person across messengers): its account joins the contact's customer."""
        assert dialog.customer_phone is not None
        if (await self.customers.load(conn, str(dialog.customer_id))).state is not None:
            return  # known already: linked or not, by its own history
        owner = await cards.customer_of_phone(conn, dialog.customer_phone)
        if owner is not None and owner != dialog.customer_id:
            await self.merge(conn, owner, dialog.customer_id, None, dialog.account, cause=env)

    async def create_lead(
        self,
        conn: AsyncConnection,
        dialog: DialogFacts,
        actor_id: str,
        title: str | None,
        customer_id: UUID | None = None,
    ) -> UUID:
        """The lead the dialog is now linked to: a new one, or the customer's existing one.
        Raises domain.AlreadyLinked when the dialog has a lead (maybe since a moment ago)."""
        _, decided = await self.on_customer(
            conn,
            customer_id or dialog.customer_id,
            lambda cid, state: domain.create_lead(state, dialog, actor_id, title, cid),
        )
        link = next(e for e in decided if isinstance(e, DialogLinkedToCrm))
        assert link.lead_id is not None
        return link.lead_id

    async def on_customer(
        self,
        conn: AsyncConnection,
        customer_id: UUID,
        decide: Redirectable,
        cause: Envelope | None = None,
    ) -> tuple[UUID, list[EventPayload]]:
        """Run `decide` on the customer's stream, or on the survivor's when it was merged
        (maybe a moment ago): the customer decided on and what was recorded."""
        decided: list[EventPayload] = []
        for _ in range(MAX_HOPS):

            def attempt(state: Customer | None, cid: UUID = customer_id) -> list[EventPayload]:
                decided[:] = decide(cid, state)  # the last attempt's
                return list(decided)

            try:
                await self.customers.execute(conn, str(customer_id), attempt, cause=cause)
            except domain.Merged as merged:
                customer_id = merged.into
                continue
            return customer_id, decided
        raise RuntimeError(f"customer {customer_id}: merges chain beyond {MAX_HOPS} hops")

    async def survivor(self, conn: AsyncConnection, customer_id: UUID) -> Customer | None:
        """The customer, or the one it was merged into (following the chain)."""
        for _ in range(MAX_HOPS):
            state = (await self.customers.load(conn, str(customer_id))).state
            if state is None or state.merged_into is None:
                return state
            customer_id = state.merged_into
        raise RuntimeError(f"customer {customer_id}: merges chain beyond {MAX_HOPS} hops")

    async def merge(
        self,
        conn: AsyncConnection,
        into: UUID,
        source_id: UUID,
        actor_id: str | None,
        account: domain.Account | None = None,
        cause: Envelope | None = None,
    ) -> UUID:
        """Merge customer `source_id` into `into` (RetailCRM): the survivor's id.

        The merged customer's stream is closed first (CustomersMerged there), so that a dialog
        opening for it meanwhile either got in before (and is moved with the others) or loses
        the append race and, deciding again, follows the merge to the survivor.
        Idempotent; raises domain.Refused (not_found, same_customer, already_merged)."""
        target = await self.survivor(conn, into)
        if target is None:
            raise domain.Refused("not_found", "no such customer (into)")
        into = target.customer_id
        source: list[Customer] = []

        def close(state: Customer | None) -> list[EventPayload]:
            events = domain.merge_out(
                state,
                into,
                actor_id,
                account,
                into_contact=target.contact_id,
                into_company=target.company_id,
            )
            return events

        try:
            loaded = await self.customers.execute(conn, str(source_id), close, cause=cause)
        except domain.Merged:
            elsewhere = await self.survivor(conn, source_id)
            if elsewhere is not None and elsewhere.customer_id == into:
                return into  # merged there through another customer: nothing to do
            raise domain.Refused(
                "already_merged", "that customer was merged into another one"
            ) from None
        assert loaded.state is not None
        source.append(loaded.state)
        await self.customers.execute(
            conn, str(into), lambda state: domain.merge_in(state, source[0], actor_id), cause=cause
        )
        return into


def _counts(message: MessageAppended) -> bool:
    """Customer-visible messages (activity), and notes that @mention someone (access)."""
    return message.direction in projection.ACTIVITY or bool(message.mentions)


def dialog_facts(opened: DialogOpened) -> DialogFacts:
    return DialogFacts(
        dialog_id=opened.dialog_id,
        line_id=opened.line_id,
        channel_id=opened.channel_id,
        channel_type=opened.channel_type,
        external_user_id=opened.external_user_id,
        customer_name=opened.customer.name,
        title=opened.title,
        customer_phone=opened.customer.phone,
        customer_email=opened.customer.email,
    )


async def project_dialog_event(conn: AsyncConnection, env: Envelope) -> None:
    """The read-model half of what the DIALOGS consumer does with `env`, deciding nothing
    (no customer stream is appended to): what `openlines replay crm-link` runs. The links
    themselves come from the CRM topic (`projection.apply`)."""
    event = env.payload
    if isinstance(event, DialogOpened):
        await projection.record_dialog(conn, dialog_facts(event), env.occurred_at)
    elif isinstance(event, MessageAppended):
        if _counts(event):
            await projection.touch_dialog(conn, event)
            await projection.note_mentions(conn, event)
    elif isinstance(event, FACT_EVENTS):
        await projection.follow_dialog(conn, event)
