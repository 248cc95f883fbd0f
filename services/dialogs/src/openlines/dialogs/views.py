"""JSON shapes of the operator API (DESIGN §8 Dialog JSON, timeline items)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Row

from openlines.dialogs.domain import DialogStatus, SlaState, sla_state
from openlines.events.catalog import Direction
from openlines.events.lines import LinesConfig, Sla


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _str(value: object | None) -> str | None:
    return str(value) if value is not None else None


def dialog_json(
    row: Row, lines: LinesConfig, now: datetime, *, can_write: bool, crm_visible: bool = True
) -> dict[str, Any]:
    """`can_write`: may the caller write to it (false: opened read-only, join to write);
    `crm_visible`: may they see its CRM links (CRM rights, `Scope.sees_crm_of`)."""
    line = lines.line(row.line_id)
    # The channel's thresholds, as the line's timers count them (routing's SLA markers).
    warning, breach = (
        line.sla_seconds(row.channel_id)
        if line is not None
        else (Sla().warning_seconds, Sla().breach_seconds)
    )
    last_message = None
    if row.last_message_at is not None:
        last_message = {
            "text": row.last_message_text,
            "direction": row.last_message_direction,
            "at": _iso(row.last_message_at),
        }
    return {
        "id": str(row.id),
        "line_id": row.line_id,
        "channel_id": row.channel_id,
        "channel_type": row.channel_type,
        "status": row.status,
        "customer": {
            # The CRM contact's current name once there is one (edits show at once).
            "name": _card(row, "crm_contact_name") or row.customer_name,
            "labels": list(_card(row, "crm_labels") or ()),
            "external_id": row.customer_external_id,
            "username": row.customer_username,
            "phone": row.customer_phone,
            "email": row.customer_email,
        },
        "assignee_id": row.assignee_id,
        "participants": list(row.participants),
        "pinned_to": row.pinned_to,
        "title": row.title,
        "last_message": last_message,
        "unread_count": row.unread_count,
        "sla": {
            # Computed at read time: the state changes with the clock, not with events.
            "state": str(sla_state(row.waiting_since, now, warning, breach)),
            "waiting_since": _iso(row.waiting_since),
        },
        "crm": _crm(row) if crm_visible else None,
        "ratings": {
            "customer": row.ratings.get("customer"),
            "operator": row.ratings.get("operator"),
        },
        "classification": row.classification,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "can_write": can_write,
    }


def _card(row: Row, name: str) -> Any:
    """A field of the customer's CRM card (`crm_cards.columns`), when the row carries it."""
    return row._mapping.get(name)


def _crm(row: Row) -> dict[str, Any]:
    return {
        "customer_id": _str(row.crm_customer_id),
        "lead_id": _str(row.crm_lead_id),
        "contact_id": _str(row.crm_contact_id or _card(row, "crm_card_contact_id")),
        "company_id": _str(row.crm_company_id),
        "deal_id": _str(row.crm_deal_id),
        "deal_ids": [str(d) for d in _card(row, "crm_deal_ids") or ()],
    }


def message_json(row: Row) -> dict[str, Any]:
    delivery = None
    if row.direction == Direction.OUT:
        delivery = {
            "status": row.status,
            "reason": row.status_reason,
            "provider_message_id": row.provider_message_id,
        }
    return {
        "id": str(row.message_id),
        "direction": row.direction,
        "author_id": row.author_id,
        "text": None if row.deleted else row.text,
        "attachments": [] if row.deleted else row.attachments,
        "reply_to": _str(row.reply_to),
        "mentions": list(row.mentions),
        "client_message_id": row.client_message_id,
        "external_message_id": row.external_message_id,
        "at": _iso(row.sent_at),
        "edited_at": _iso(row.edited_at),
        "deleted": row.deleted,
        "delivery": delivery,
    }


# -- the same shapes as models, for the OpenAPI document (the handlers build plain dicts: a
# model per row costs the list CPU; the contract test checks every answer against these) --


class CustomerView(BaseModel):
    name: str
    """The CRM contact's current name when the customer has one, else the channel's."""
    labels: list[str]
    """The CRM contact's labels (`VIP`, `BAD`, custom)."""
    external_id: str
    username: str | None
    phone: str | None
    email: str | None


class LastMessageView(BaseModel):
    text: str | None
    direction: Direction | None
    at: datetime | None


class SlaView(BaseModel):
    state: SlaState
    waiting_since: datetime | None


class CrmView(BaseModel):
    customer_id: UUID | None
    lead_id: UUID | None
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    """The deal linked last."""
    deal_ids: list[UUID]
    """Every deal of the customer."""


class CustomerRatingView(BaseModel):
    score: int
    scale: int


class OperatorRatingView(BaseModel):
    score: int
    scale: int
    comment: str | None
    by: str
    """The operator who rated the customer."""


class RatingsView(BaseModel):
    customer: CustomerRatingView | None
    """The customer's CSAT answer to the rating request sent on close (once)."""
    operator: OperatorRatingView | None
    """The latest rating of the customer by an operator (`POST .../rating`)."""


class ClassificationView(BaseModel):
    type: str | None
    reasons: list[str]
    status: str | None
    by: str


class DialogView(BaseModel):
    """A dialog (DESIGN §8)."""

    id: UUID
    line_id: str
    channel_id: str
    channel_type: str
    status: DialogStatus
    customer: CustomerView
    assignee_id: str | None
    participants: list[str]
    pinned_to: str | None
    """The operator this customer's next dialogs on the line go to first (Bitrix24's pin)."""
    title: str
    last_message: LastMessageView | None
    unread_count: int
    """The caller's: customer messages they have not read (reading and replying read)."""
    sla: SlaView
    crm: CrmView | None
    """Null when the caller's CRM rights do not cover it (`none`, or `own` and not theirs)."""
    ratings: RatingsView
    classification: ClassificationView | None
    """The latest `POST .../classify`; None while unclassified."""
    created_at: datetime
    updated_at: datetime
    can_write: bool
    """False: the caller reads it only (a colleague's dialog of their line, or one they are
    mentioned in); writing needs a join."""


class DialogPage(BaseModel):
    """A page of dialogs, newest update first; `next_cursor` fetches the next one."""

    items: list[DialogView]
    next_cursor: str | None


class DeliveryView(BaseModel):
    status: str | None
    reason: str | None
    provider_message_id: str | None


class MessageView(BaseModel):
    id: UUID
    direction: Direction
    author_id: str | None
    text: str | None
    attachments: list[dict[str, Any]]
    reply_to: UUID | None
    mentions: list[str]
    """Operators @mentioned (notes)."""
    client_message_id: str | None
    external_message_id: str | None
    at: datetime
    edited_at: datetime | None
    deleted: bool
    delivery: DeliveryView | None


class TimelineView(BaseModel):
    """A dialog's messages, oldest first."""

    dialog_id: UUID
    items: list[MessageView]
    can_write: bool


class ReplyAccepted(BaseModel):
    """The reply is recorded; outbound sends it (a retry with the same client id answers the
    same)."""

    message_id: UUID
    status: str | None


def history_item_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "line_id": row.line_id,
        "channel_id": row.channel_id,
        "channel_type": row.channel_type,
        "status": row.status,
        "title": row.title,
        "message_count": row.message_count,
        "opened_at": _iso(row.created_at),
        "closed_at": _iso(row.closed_at),
    }


class HistoryItemView(BaseModel):
    id: UUID
    line_id: str
    channel_id: str
    channel_type: str
    status: DialogStatus
    title: str
    message_count: int
    """Customer and operator messages (not notes or system lines)."""
    opened_at: datetime
    closed_at: datetime | None
    """When it was closed (or marked spam); None while open."""


class HistoryView(BaseModel):
    """The customer's earlier dialogs (same CRM customer on any channel, else the same
    channel account), newest first; `.../history/{earlier_id}/timeline` reads each."""

    dialog_id: UUID
    items: list[HistoryItemView]


class CountersView(BaseModel):
    """The caller's badges: dialogs they may list that are unassigned, unanswered (the
    customer wrote last), unread by them, and active with them on it. Each also as the
    badge's text (`"99+"` above 99). The WebSocket pushes the same body as
    `{"type": "counters", ...}` whenever it changes."""

    unassigned: int
    unassigned_display: str
    unanswered: int
    unanswered_display: str
    unread: int
    unread_display: str
    mine_active: int
    mine_active_display: str


class ReadAllView(BaseModel):
    """How many dialogs were marked read for the caller."""

    read: int
