"""The metric definitions, one test per rule, on scripted event histories (pure: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from openlines.analytics.metrics import DialogMetrics, Fact, FactKind, metrics_of
from openlines.events.catalog import (
    CloseReason,
    DialogRated,
    DialogReopened,
    DialogTransferred,
    Direction,
    SlaBreached,
    SlaWarningReached,
)
from openlines.events.envelope import Envelope, EventPayload
from openlines.events.testing import factories
from openlines.events.testing.factories import DialogStream

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Script:
    """A dialog's history, written as `at(second, event)` lines."""

    def __init__(self) -> None:
        self.dialog_id = uuid.uuid4()
        self.stream = DialogStream()
        self.history: list[Envelope[EventPayload]] = []

    def at(self, second: float, payload: EventPayload) -> Script:
        when = T0 + timedelta(seconds=second)
        self.history.append(self.stream.envelope(payload, occurred_at=when))
        return self

    def opened(self, second: float = 0) -> Script:
        return self.at(second, factories.dialog_opened(self.dialog_id))

    def customer(self, second: float) -> Script:
        return self.at(second, factories.message_appended(self.dialog_id, "hi"))

    def reply(self, second: float, operator: str) -> Script:
        return self.at(second, self._out(operator))

    def bot(self, second: float) -> Script:
        return self.at(second, self._out(None))

    def _out(self, author: str | None) -> EventPayload:
        return factories.message_appended(
            self.dialog_id, "answer", direction=Direction.OUT, author_id=author
        )

    def note(self, second: float, operator: str) -> Script:
        message = factories.message_appended(
            self.dialog_id, "psst", direction=Direction.NOTE, author_id=operator
        )
        return self.at(second, message)

    def system(self, second: float) -> Script:
        message = factories.message_appended(self.dialog_id, "x", direction=Direction.SYSTEM)
        return self.at(second, message)

    def assigned(self, second: float, operator: str) -> Script:
        return self.at(second, factories.dialog_assigned(self.dialog_id, operator))

    def transferred(self, second: float, source: str, target: str | None) -> Script:
        transfer = DialogTransferred(
            dialog_id=self.dialog_id,
            from_operator_id=source,
            to_operator_id=target,
            to_line_id=None if target else "demo",
            actor_id=source,
        )
        return self.at(second, transfer)

    def closed(
        self, second: float, operator: str | None, reason: CloseReason = CloseReason.OPERATOR
    ) -> Script:
        return self.at(second, factories.dialog_closed(self.dialog_id, operator, reason=reason))

    def reopened(self, second: float, operator: str) -> Script:
        event = DialogReopened(dialog_id=self.dialog_id, actor_id=operator, operator_id=operator)
        return self.at(second, event)

    def sla(
        self, second: float, kind: type[SlaWarningReached | SlaBreached], operator: str
    ) -> Script:
        event = kind(
            dialog_id=self.dialog_id,
            line_id="demo",
            operator_id=operator,
            waiting_since=T0,
            threshold_seconds=30,
        )
        return self.at(second, event)

    def rated(self, second: float, score: int, by: Literal["customer", "operator"]) -> Script:
        return self.at(second, DialogRated(dialog_id=self.dialog_id, score=score, scale=5, by=by))

    def result(self) -> tuple[DialogMetrics, list[Fact]]:
        metrics, facts = metrics_of(self.history)
        assert metrics is not None
        return metrics, facts


def facts_of(facts: list[Fact], kind: FactKind) -> list[tuple[str | None, float | None]]:
    return [(f.operator_id, f.value) for f in facts if f.kind is kind]


def test_first_response_runs_from_the_first_customer_message_to_the_first_reply() -> None:
    metrics, facts = (
        Script().opened(0).customer(0).assigned(5, "ann").customer(20).reply(45, "ann").result()
    )
    assert metrics.first_response_seconds == 45
    assert metrics.first_response_by == "ann"
    assert facts_of(facts, FactKind.FIRST_RESPONSE) == [("ann", 45)]
    assert metrics.next_response_seconds == ()


def test_every_next_response_runs_from_the_first_unanswered_message_of_its_wait() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .reply(10, "ann")
        .reply(12, "ann")  # a follow-up: nothing was waiting
        .customer(100)
        .customer(130)  # the same wait
        .reply(160, "ann")
        .customer(200)
        .reply(205, "ann")
        .result()
    )
    assert metrics.first_response_seconds == 10
    assert metrics.next_response_seconds == (60, 5)
    assert facts_of(facts, FactKind.NEXT_RESPONSE) == [("ann", 60), ("ann", 5)]


def test_after_a_transfer_the_response_is_credited_to_the_operator_who_answered() -> None:
    """chatwoot/chatwoot#9747: not to the assignee at the time, nor to the first one."""
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .assigned(1, "ann")
        .transferred(30, "ann", "bob")  # the wait runs on across the transfer
        .reply(50, "bob")
        .result()
    )
    assert (metrics.first_response_seconds, metrics.first_response_by) == (50, "bob")
    assert facts_of(facts, FactKind.FIRST_RESPONSE) == [("bob", 50)]
    assert metrics.transfers == 1
    assert facts_of(facts, FactKind.TRANSFER) == [("ann", None)]
    assert metrics.operator_id == "bob"


def test_a_reply_by_someone_other_than_the_assignee_is_theirs() -> None:
    _, facts = Script().opened(0).customer(0).assigned(1, "ann").reply(9, "sue").result()
    assert facts_of(facts, FactKind.FIRST_RESPONSE) == [("sue", 9)]


def test_bot_and_system_messages_never_count_as_a_response() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .bot(1)  # an auto-reply: out, without an author
        .system(2)
        .reply(30, "ann")
        .result()
    )
    assert metrics.first_response_seconds == 30
    assert metrics.messages_out == 1  # the bot's is not an operator's message
    assert len(facts_of(facts, FactKind.FIRST_RESPONSE)) == 1


def test_notes_neither_answer_nor_count_as_messages() -> None:
    metrics, _ = Script().opened(0).customer(0).note(5, "ann").reply(20, "ann").result()
    assert metrics.first_response_seconds == 20
    assert (metrics.messages_in, metrics.messages_out) == (1, 1)


def test_messages_in_and_out_count_customer_messages_and_operator_replies() -> None:
    metrics, _ = (
        Script()
        .opened(0)
        .customer(0)
        .customer(1)
        .bot(2)
        .note(3, "ann")
        .reply(4, "ann")
        .reply(5, "bob")
        .system(6)
        .result()
    )
    assert (metrics.messages_in, metrics.messages_out) == (2, 2)


def test_resolution_runs_from_opening_to_close_and_again_after_a_reopen() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .assigned(1, "ann")
        .reply(5, "ann")
        .closed(100, "ann")
        .reopened(200, "bob")
        .customer(210)
        .reply(250, "bob")
        .closed(300, "bob")
        .result()
    )
    assert metrics.resolution_seconds == 300
    assert facts_of(facts, FactKind.RESOLUTION) == [("ann", 100), ("bob", 300)]
    assert facts_of(facts, FactKind.CLOSED) == [("ann", None), ("bob", None)]
    assert metrics.reopens == 1
    # After a reopen the first response stays the dialog's first; the next wait is a next one.
    assert metrics.first_response_seconds == 5
    assert metrics.next_response_seconds == (40,)


def test_a_close_ends_an_unanswered_wait_without_a_response() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .assigned(1, "ann")
        .closed(60, "ann")
        .reopened(70, "ann")
        .reply(80, "ann")  # nothing was waiting since the close
        .result()
    )
    assert metrics.first_response_seconds is None
    assert facts_of(facts, FactKind.FIRST_RESPONSE) == []


def test_spam_is_not_a_resolution() -> None:
    metrics, facts = Script().opened(0).customer(0).closed(10, None, CloseReason.SPAM).result()
    assert metrics.status == "spam"
    assert metrics.resolution_seconds is None
    assert facts_of(facts, FactKind.RESOLUTION) == facts_of(facts, FactKind.CLOSED) == []


def test_queue_time_sums_every_stretch_open_and_unassigned() -> None:
    metrics, _ = (
        Script()
        .opened(0)
        .customer(0)
        .assigned(30, "ann")
        .transferred(100, "ann", None)  # back to the line's queue
        .assigned(145, "bob")
        .closed(200, "bob")
        .reopened(300, "bob")  # reopened with an operator: no queue
        .closed(400, "bob")
        .result()
    )
    assert metrics.queue_seconds == 75


def test_a_dialog_closed_while_queued_stops_the_queue_clock() -> None:
    metrics, _ = Script().opened(0).customer(0).closed(40, None).result()
    assert metrics.queue_seconds == 40
    assert metrics.status == "closed"


def test_transfers_count_every_handover() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .assigned(1, "ann")
        .transferred(2, "ann", "bob")
        .transferred(3, "bob", None)
        .result()
    )
    assert metrics.transfers == 2
    assert facts_of(facts, FactKind.TRANSFER) == [("ann", None), ("bob", None)]


def test_sla_events_count_for_the_operator_they_name() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .customer(0)
        .assigned(1, "ann")
        .sla(30, SlaWarningReached, "ann")
        .sla(60, SlaBreached, "ann")
        .result()
    )
    assert (metrics.sla_warnings, metrics.sla_breaches) == (1, 1)
    assert facts_of(facts, FactKind.SLA_WARNING) == [("ann", None)]
    assert facts_of(facts, FactKind.SLA_BREACH) == [("ann", None)]


def test_csat_is_the_customers_rating_credited_to_the_dialogs_operator() -> None:
    metrics, facts = (
        Script()
        .opened(0)
        .assigned(1, "ann")
        .closed(5, "ann")
        .rated(6, 4, "customer")
        .rated(7, 2, "operator")  # the operator rates the customer: not CSAT
        .result()
    )
    assert (metrics.csat_score, metrics.operator_rating) == (4, 2)
    assert facts_of(facts, FactKind.RATING) == [("ann", 4)]


def test_events_before_the_opening_are_ignored_and_a_redelivered_opening_changes_nothing() -> None:
    script = Script()
    script.customer(0).opened(1).opened(2).customer(3)
    metrics, facts = script.result()
    assert metrics.opened_at == T0 + timedelta(seconds=1)
    assert metrics.messages_in == 1
    assert len(facts_of(facts, FactKind.OPENED)) == 1


def test_an_sla_event_read_before_the_opening_still_counts_in_the_summary() -> None:
    script = Script()
    script.sla(30, SlaBreached, "ann").opened(31)
    metrics, facts = script.result()
    assert facts_of(facts, FactKind.SLA_BREACH) == [("ann", None)]
    assert metrics.sla_breaches == 0  # the dialog's row had nothing to count it on
