"""The Customer aggregate and its decisions, free of I/O.

A customer is one messenger identity, (channel_type, external_user_id). Its stream (stream_id =
customer id) holds everything CRM learns about it: the identity and the channels it was seen
on, its leads, and the dialogs linked to them. The customer id is derived from the identity, so
two writers racing over a new identity meet on the same stream and optimistic concurrency lets
exactly one of them create it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from uuid import UUID

from openlines.events.catalog import (
    ChannelType,
    CustomerIdentified,
    DialogLinkedToCrm,
    LeadCreated,
)
from openlines.events.envelope import EventPayload

# Fixed forever: changing it changes every customer id.
CUSTOMER_NAMESPACE = UUID("3f8a3a52-5c0e-4d0a-9a63-6f4c1b2d7e10")


def customer_id_for(channel_type: str, external_user_id: str) -> UUID:
    return uuid.uuid5(CUSTOMER_NAMESPACE, f"{channel_type}\x1f{external_user_id}")


def lead_id_for(customer_id: UUID, source_dialog_id: UUID) -> UUID:
    # A dialog yields at most one lead: retries of the same decision agree on its id.
    return uuid.uuid5(customer_id, f"lead\x1f{source_dialog_id}")


@dataclass(frozen=True)
class DialogFacts:
    """What crm-link knows of a dialog (from its DialogOpened)."""

    dialog_id: UUID
    line_id: str
    channel_id: str
    channel_type: ChannelType
    external_user_id: str
    customer_name: str
    title: str

    @property
    def customer_id(self) -> UUID:
        return customer_id_for(self.channel_type, self.external_user_id)


@dataclass(frozen=True)
class Customer:
    customer_id: UUID
    channel_ids: frozenset[str] = frozenset()
    lead_ids: tuple[UUID, ...] = ()
    dialog_leads: Mapping[UUID, UUID | None] = field(default_factory=dict)
    """Every linked dialog and its lead (None: linked to the customer only)."""

    @property
    def current_lead(self) -> UUID | None:
        return self.lead_ids[-1] if self.lead_ids else None


def evolve(state: Customer | None, event: EventPayload) -> Customer | None:
    if isinstance(event, CustomerIdentified):
        if state is None:
            return Customer(event.customer_id, frozenset({event.channel_id}))
        return replace(state, channel_ids=state.channel_ids | {event.channel_id})
    if state is None:
        return None  # nothing precedes CustomerIdentified in a customer stream
    if isinstance(event, LeadCreated):
        return replace(state, lead_ids=(*state.lead_ids, event.lead_id))
    if isinstance(event, DialogLinkedToCrm):
        links = {**state.dialog_leads, event.dialog_id: event.lead_id}
        return replace(state, dialog_leads=links)
    return state


def replay(events: Iterable[EventPayload]) -> Customer | None:
    state: Customer | None = None
    for event in events:
        state = evolve(state, event)
    return state


def on_dialog_opened(
    state: Customer | None, dialog: DialogFacts, auto_lead: bool
) -> list[EventPayload]:
    """Identify the customer and link the dialog: to the customer's lead if it has one, to a new
    lead if the line creates them automatically, otherwise to the customer alone."""
    if state is not None and dialog.dialog_id in state.dialog_leads:
        return []  # already linked (a redelivery, or a retry after losing a race)
    customer_id = dialog.customer_id
    events: list[EventPayload] = []
    if state is None or dialog.channel_id not in state.channel_ids:
        events.append(_identified(dialog, is_new=state is None))
    lead_id = state.current_lead if state is not None else None
    if lead_id is None and auto_lead:
        lead_id = lead_id_for(customer_id, dialog.dialog_id)
        events.append(_lead(customer_id, lead_id, dialog, dialog.title, auto=True, actor=None))
    events.append(
        DialogLinkedToCrm(dialog_id=dialog.dialog_id, customer_id=customer_id, lead_id=lead_id)
    )
    return events


def _identified(dialog: DialogFacts, *, is_new: bool) -> CustomerIdentified:
    """The dialog's customer, seen on the dialog's channel (a new customer, or a new channel)."""
    return CustomerIdentified(
        customer_id=dialog.customer_id,
        channel_type=dialog.channel_type,
        channel_id=dialog.channel_id,
        external_user_id=dialog.external_user_id,
        name=dialog.customer_name,
        dialog_id=dialog.dialog_id,
        is_new=is_new,
    )


class AlreadyLinked(Exception):
    def __init__(self, lead_id: UUID) -> None:
        super().__init__(f"the dialog is already linked to lead {lead_id}")
        self.lead_id = lead_id


def create_lead(
    state: Customer | None, dialog: DialogFacts, actor_id: str, title: str | None
) -> list[EventPayload]:
    """An operator creates a lead from a dialog that has none (auto-lead off on its line).

    A customer who has a lead already (from another dialog) gets no second one: the dialog
    joins that lead (DESIGN §9, no duplicate leads).
    """
    linked = state.dialog_leads.get(dialog.dialog_id) if state is not None else None
    if linked is not None:
        raise AlreadyLinked(linked)
    customer_id = dialog.customer_id
    existing = state.current_lead if state is not None else None
    if existing is not None:
        return [
            DialogLinkedToCrm(dialog_id=dialog.dialog_id, customer_id=customer_id, lead_id=existing)
        ]
    events: list[EventPayload] = []
    if state is None:  # crm-link learnt of the dialog but the customer write was lost: heal
        events.append(_identified(dialog, is_new=True))
    lead_id = lead_id_for(customer_id, dialog.dialog_id)
    events.append(
        _lead(customer_id, lead_id, dialog, title or dialog.title, auto=False, actor=actor_id)
    )
    events.append(
        DialogLinkedToCrm(dialog_id=dialog.dialog_id, customer_id=customer_id, lead_id=lead_id)
    )
    return events


def _lead(
    customer_id: UUID,
    lead_id: UUID,
    dialog: DialogFacts,
    title: str,
    *,
    auto: bool,
    actor: str | None,
) -> LeadCreated:
    return LeadCreated(
        lead_id=lead_id,
        customer_id=customer_id,
        title=title,
        source_dialog_id=dialog.dialog_id,
        channel_type=dialog.channel_type,
        auto=auto,
        actor_id=actor,
    )


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
