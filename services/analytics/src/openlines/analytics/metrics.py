"""Conversation metrics with exact definitions: event history in, metrics out. Pure.

One dialog's metrics are a fold of its events (`step`, over `DialogMetrics`); every step may
also yield `Fact`s, the dated, attributed measurements the summary report aggregates (a close
with its resolution time, a reply with its response time and the operator who wrote it). The
read model is nothing but this fold persisted, so replaying the topics rebuilds it.

The definitions follow Chatwoot's (first response time, reply time, resolution time) with
its attribution bug fixed (chatwoot/chatwoot#9747, #9605): a response is credited to the
operator who wrote it, not to whoever held the dialog. The README's "Reports and metric
definitions" says the same in prose; each rule has a test in tests/test_analytics_metrics.py.

Clocks read the envelope's `occurred_at` (when dialogs recorded the event): every event of a
dialog carries one, in stream order, whereas a customer message's `sent_at` is the provider's
clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from openlines.events.catalog import (
    CloseReason,
    DialogAssigned,
    DialogClosed,
    DialogOpened,
    DialogReopened,
    DialogStatus,
    DialogTransferred,
    Direction,
    MessageAppended,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.catalog.common import OPEN_STATUSES
from openlines.events.envelope import Envelope, EventPayload
from openlines.kit.access import DialogFacts

# `DialogRated {score, by: customer|operator}` (the dialogs catalog): `step` reads any payload
# of this TYPE (projection.APPLIED subscribes to the class).
RATING_TYPE = "DialogRated"


class FactKind(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"
    TRANSFER = "transfer"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    RATING = "rating"


@dataclass(frozen=True)
class Fact:
    """One measurement for the summary: what, when, where, whose, how much (seconds, or the
    score of a rating)."""

    kind: FactKind
    at: datetime
    line_id: str
    operator_id: str | None
    value: float | None = None
    channel_id: str | None = None
    channel_type: str | None = None


@dataclass(frozen=True)
class DialogMetrics:
    """A dialog's metrics so far, and the clocks that are running."""

    dialog_id: UUID
    line_id: str
    channel_id: str
    channel_type: str
    opened_at: datetime
    status: str = DialogStatus.UNASSIGNED
    operator_id: str | None = None
    """The responsible operator now (the last assignee)."""
    closed_at: datetime | None = None
    close_reason: str | None = None
    first_response_seconds: float | None = None
    first_response_by: str | None = None
    next_response_seconds: tuple[float, ...] = ()
    resolution_seconds: float | None = None
    transfers: int = 0
    reopens: int = 0
    messages_in: int = 0
    messages_out: int = 0
    queue_seconds: float = 0.0
    sla_warnings: int = 0
    sla_breaches: int = 0
    csat_score: int | None = None
    """The customer's rating (the last one, if they rated twice)."""
    operator_rating: int | None = None
    """The operator's rating of the customer; not CSAT."""
    waiting_since: datetime | None = None
    """The customer's first unanswered message: the response clock runs from here."""
    queued_since: datetime | None = None
    """Open and unassigned since: the queue clock runs from here."""

    def fact(
        self, kind: FactKind, at: datetime, operator_id: str | None, value: float | None = None
    ) -> Fact:
        return Fact(kind, at, self.line_id, operator_id, value, self.channel_id, self.channel_type)


def seconds(since: datetime, until: datetime) -> float:
    # A clock never runs backwards, whatever two producers' clocks say.
    return max(0.0, (until - since).total_seconds())


def is_response(message: MessageAppended) -> bool:
    """An operator's reply to the customer. Notes and system lines are staff-only; an `out`
    message without an author is an auto-reply (bot, template): none of them answers."""
    return message.direction is Direction.OUT and message.author_id is not None


Step = tuple[DialogMetrics | None, tuple[Fact, ...]]


def step(metrics: DialogMetrics | None, event: EventPayload, at: datetime) -> Step:
    """`metrics` after `event`, which happened `at`, and the facts it yields. Before its
    `DialogOpened` a dialog has no metrics and its other events yield nothing."""
    if isinstance(event, DialogOpened):
        if metrics is not None:
            return metrics, ()  # redelivered
        opened = DialogMetrics(
            dialog_id=event.dialog_id,
            line_id=event.line_id,
            channel_id=event.channel_id,
            channel_type=event.channel_type.value,
            opened_at=at,
            queued_since=at,
        )
        return opened, (opened.fact(FactKind.OPENED, at, None),)
    if metrics is None:
        if isinstance(event, SlaWarningReached | SlaBreached):
            # Routing's topic is read apart from the dialogs topic: its news may come first.
            # The fact stands on the event alone; the dialog's row misses the count.
            return None, (_sla_fact(event, at),)
        return None, ()
    handler = _STEPS.get(type(event))
    if handler is not None:
        return handler(metrics, event, at)
    if type(event).TYPE == RATING_TYPE:
        return _rated(metrics, event, at)
    return metrics, ()


def _message(m: DialogMetrics, event: MessageAppended, at: datetime) -> Step:
    if event.direction is Direction.IN:
        # A run of customer messages is one wait: the clock starts at the first of them.
        return replace(m, messages_in=m.messages_in + 1, waiting_since=m.waiting_since or at), ()
    if not is_response(event):
        return m, ()
    assert event.author_id is not None
    m = replace(m, messages_out=m.messages_out + 1)
    if m.waiting_since is None:
        return m, ()  # a follow-up, or the operator wrote first: nothing was waiting
    waited = seconds(m.waiting_since, at)
    m = replace(m, waiting_since=None)
    if m.first_response_seconds is None:
        m = replace(m, first_response_seconds=waited, first_response_by=event.author_id)
        return m, (m.fact(FactKind.FIRST_RESPONSE, at, event.author_id, waited),)
    m = replace(m, next_response_seconds=(*m.next_response_seconds, waited))
    return m, (m.fact(FactKind.NEXT_RESPONSE, at, event.author_id, waited),)


def _held(m: DialogMetrics, event: EventPayload) -> DialogMetrics:
    """Status, responsible operator and line after `event`, moved by the access policy's own
    rules (`openlines.kit.access.follow`), so a report and the policy never disagree."""
    held = DialogFacts(line_id=m.line_id, status=m.status, assignee_id=m.operator_id).after(event)
    return replace(m, status=held.status, operator_id=held.assignee_id, line_id=held.line_id)


def _assigned(m: DialogMetrics, event: DialogAssigned, at: datetime) -> Step:
    return _hand_to(m, event, at), ()


def _transferred(m: DialogMetrics, event: DialogTransferred, at: datetime) -> Step:
    # The transfer is the transferring operator's; the wait (if any) runs on.
    fact = m.fact(FactKind.TRANSFER, at, event.from_operator_id or m.operator_id)
    moved = _hand_to(m, event, at)
    return replace(moved, transfers=m.transfers + 1), (fact,)


def _hand_to(
    m: DialogMetrics, event: DialogAssigned | DialogTransferred, at: datetime
) -> DialogMetrics:
    moved = _held(m, event)
    if m.status not in OPEN_STATUSES:
        # Reassigning a closed dialog does not reopen it (DESIGN §9): no queue clock.
        return moved
    if moved.operator_id is None:  # back to a queue
        return replace(moved, queued_since=m.queued_since or at)
    return _leave_queue(moved, at)


def _leave_queue(m: DialogMetrics, at: datetime) -> DialogMetrics:
    if m.queued_since is None:
        return m
    return replace(
        m, queue_seconds=m.queue_seconds + seconds(m.queued_since, at), queued_since=None
    )


def _closed(m: DialogMetrics, event: DialogClosed, at: datetime) -> Step:
    holder = event.operator_id or m.operator_id
    # A close ends the queue clock and the wait (an unanswered wait is not a response).
    m = replace(
        _held(_leave_queue(m, at), event),
        waiting_since=None,
        closed_at=at,
        close_reason=event.reason.value,
        operator_id=holder,
        line_id=event.line_id,
    )
    if event.reason is CloseReason.SPAM:
        return m, ()
    resolved = seconds(m.opened_at, at)
    m = replace(m, resolution_seconds=resolved)
    return m, (
        m.fact(FactKind.CLOSED, at, holder),
        m.fact(FactKind.RESOLUTION, at, holder, resolved),
    )


def _reopened(m: DialogMetrics, event: DialogReopened, at: datetime) -> Step:
    # Reopened with an operator: no queue clock. Resolution is measured again at the next
    # close, still from the opening; no clock starts until the customer writes.
    return replace(
        _held(m, event),
        reopens=m.reopens + 1,
        closed_at=None,
        close_reason=None,
    ), ()


def _sla(m: DialogMetrics, event: SlaWarningReached | SlaBreached, at: datetime) -> Step:
    operator_id = event.operator_id or m.operator_id
    if isinstance(event, SlaBreached):
        return replace(m, sla_breaches=m.sla_breaches + 1), (
            m.fact(FactKind.SLA_BREACH, at, operator_id),
        )
    return replace(m, sla_warnings=m.sla_warnings + 1), (
        m.fact(FactKind.SLA_WARNING, at, operator_id),
    )


def _sla_fact(event: SlaWarningReached | SlaBreached, at: datetime) -> Fact:
    kind = FactKind.SLA_BREACH if isinstance(event, SlaBreached) else FactKind.SLA_WARNING
    return Fact(kind, at, event.line_id, event.operator_id)


def _rated(m: DialogMetrics, event: Any, at: datetime) -> Step:
    score = int(event.score)
    if str(event.by) != "customer":
        return replace(m, operator_rating=score), ()
    # CSAT is the customer's rating; it is credited to the operator who held the dialog.
    return replace(m, csat_score=score), (m.fact(FactKind.RATING, at, m.operator_id, score),)


_STEPS: dict[type[EventPayload], Any] = {
    MessageAppended: _message,
    DialogAssigned: _assigned,
    DialogTransferred: _transferred,
    DialogClosed: _closed,
    DialogReopened: _reopened,
    SlaWarningReached: _sla,
    SlaBreached: _sla,
}

# The events that move the metrics (the analytics subscription registers these).
DIALOG_EVENTS: tuple[type[EventPayload], ...] = (
    DialogOpened,
    MessageAppended,
    DialogAssigned,
    DialogTransferred,
    DialogClosed,
    DialogReopened,
)
SLA_EVENTS: tuple[type[EventPayload], ...] = (SlaWarningReached, SlaBreached)


def metrics_of(history: Iterable[Envelope[Any]]) -> tuple[DialogMetrics | None, list[Fact]]:
    """One dialog's metrics and facts from its event history, in order."""
    metrics: DialogMetrics | None = None
    facts: list[Fact] = []
    for envelope in history:
        metrics, more = step(metrics, envelope.payload, envelope.occurred_at)
        facts.extend(more)
    return metrics, facts
