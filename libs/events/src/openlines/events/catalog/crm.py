"""``openlines.crm.v1``: customer identities and CRM entities, keyed by customer id.

Every event carries ``customer_id`` so that the key is always at hand.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from openlines.events.catalog.common import ChannelType
from openlines.events.envelope import EventPayload
from openlines.events.limits import Id, Name

__all__ = [
    "CompanyCreated",
    "ContactCreated",
    "ContactUpdated",
    "CustomerIdentified",
    "CustomersMerged",
    "DealCreated",
    "LeadConverted",
    "LeadCreated",
]


class CustomerIdentified(EventPayload):
    """A messenger account was matched to (or created as) a CRM customer."""

    TYPE: ClassVar[str] = "CustomerIdentified"

    customer_id: UUID
    channel_type: ChannelType
    channel_id: Id
    external_user_id: Id
    name: Name
    dialog_id: UUID | None = None
    """The dialog that revealed the identity."""
    is_new: bool = False
    """True when the customer did not exist before."""


class LeadCreated(EventPayload):
    TYPE: ClassVar[str] = "LeadCreated"

    lead_id: UUID
    customer_id: UUID
    title: Name
    source_dialog_id: UUID | None = None
    channel_type: ChannelType | None = None
    auto: bool
    """Created by the line's auto-lead rule rather than by an operator."""
    actor_id: Id | None = None
    """The operator, for manual leads."""


class LeadConverted(EventPayload):
    """The lead became a contact, a company and/or a deal."""

    TYPE: ClassVar[str] = "LeadConverted"

    lead_id: UUID
    customer_id: UUID
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None
    actor_id: Id | None = None


class ContactCreated(EventPayload):
    TYPE: ClassVar[str] = "ContactCreated"

    contact_id: UUID
    customer_id: UUID
    name: Name
    phone: Name | None = None
    email: Name | None = None
    source_lead_id: UUID | None = None
    actor_id: Id | None = None


class ContactUpdated(EventPayload):
    """An operator edited a contact's card. Each field given replaces the old value; a field
    left out (None) stays as it was."""

    TYPE: ClassVar[str] = "ContactUpdated"

    contact_id: UUID
    customer_id: UUID
    name: Name | None = None
    phones: tuple[Name, ...] | None = Field(default=None, max_length=32)
    emails: tuple[Name, ...] | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=4096)
    labels: tuple[Name, ...] | None = Field(default=None, max_length=32)
    """RetailCRM/KeyCRM marks: ``VIP``, ``BAD`` or custom ones."""
    actor_id: Id | None = None


class CompanyCreated(EventPayload):
    TYPE: ClassVar[str] = "CompanyCreated"

    company_id: UUID
    customer_id: UUID
    name: Name
    source_lead_id: UUID | None = None
    actor_id: Id | None = None


class DealCreated(EventPayload):
    """A deal, from a lead conversion or straight from a dialog."""

    TYPE: ClassVar[str] = "DealCreated"

    deal_id: UUID
    customer_id: UUID
    title: Name
    amount_minor: int | None = None
    """Amount in minor units (cents), to stay exact."""
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    """ISO 4217 code."""
    contact_id: UUID | None = None
    company_id: UUID | None = None
    source_lead_id: UUID | None = None
    source_dialog_id: UUID | None = None
    actor_id: Id | None = None
    stage: Name | None = None
    """The pipeline stage the deal starts in (None: the CRM's first)."""


class CustomersMerged(EventPayload):
    """Two customers turned out to be one; ``customer_id`` survives."""

    TYPE: ClassVar[str] = "CustomersMerged"

    customer_id: UUID
    merged_customer_id: UUID
    actor_id: Id | None = None
    # What moved from the merged customer to the survivor (additive: absent in older records).
    # Bounded so that the largest legal record fits one Kafka record (limits.py).
    lead_ids: tuple[UUID, ...] = Field(default=(), max_length=256)
    deal_ids: tuple[UUID, ...] = Field(default=(), max_length=256)
    accounts: tuple[Id, ...] = Field(default=(), max_length=64)
    """The merged customer's messenger accounts, as ``{channel_id}:{external_user_id}``."""
    contact_id: UUID | None = None
    """The survivor's contact after the merge (its own, else the merged customer's)."""
    merged_contact_id: UUID | None = None
    """The merged customer's contact when both had one: it now answers ``merged_into``."""
    company_id: UUID | None = None
