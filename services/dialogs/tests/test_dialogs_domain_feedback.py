"""CSAT and classification on the pure Dialog aggregate: the rating request a close sends,
the customer's answer recorded once, scale bounds, the operator's rating and the line's
classification values."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from openlines.dialogs.domain import Dialog, describe
from openlines.dialogs.domain.feedback import (
    digit_score,
    parse_rating_data,
    rating_button_data,
    rating_request_id,
)
from openlines.dialogs.domain.refusals import (
    NotClassifiable,
    RatingNotRequested,
    ScoreOutOfScale,
    UnknownClassReason,
    UnknownClassStatus,
    UnknownClassType,
)
from openlines.events.catalog import (
    ChannelType,
    CloseReason,
    DeliveryStatus,
    DialogClassified,
    DialogRated,
    Direction,
    MessageAppended,
)
from openlines.events.envelope import EventPayload
from openlines.events.lines import Classification, Csat
from openlines.events.testing.factories import message_received

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def record(dialog: Dialog, events: Sequence[EventPayload]) -> None:
    for event in events:
        dialog.apply(event, T0)


def assigned_to(operator: str) -> Dialog:
    dialog = Dialog(uuid.uuid4())
    message = message_received(text="hi", external_message_id="1", name="Carl", sent_at=T0)
    record(dialog, dialog.open_from_inbound(message, message_id=uuid.uuid4(), line_id="demo"))
    record(dialog, dialog.assign_by_routing(operator, line_id="demo"))
    return dialog


CSAT = Csat(enabled=True, question="Rate us?", scale=5)
CLASSES = Classification(
    types=("question", "complaint"), reasons=("delivery", "payment"), statuses=("resolved",)
)


def closed(
    dialog: Dialog, csat: Csat = CSAT, reason: CloseReason = CloseReason.OPERATOR
) -> list[EventPayload]:
    """Close as the writer does: the close, then what it calls for on the line."""
    decided = dialog.close("ann", reason) if reason != CloseReason.SPAM else dialog.mark_spam("ann")
    events = [*decided, *dialog.rating_request_after(decided, csat, now=T0)]
    record(dialog, events)
    return events


def test_a_close_asks_the_telegram_customer_with_one_button_per_score() -> None:
    dialog = assigned_to("ann")
    events = closed(dialog)
    request = events[-1]
    assert isinstance(request, MessageAppended)
    assert (request.direction, request.author_id, request.status) == (
        Direction.OUT,
        None,
        DeliveryStatus.QUEUED,
    )
    assert request.message_id == rating_request_id(dialog.id)
    assert request.text == "Rate us?"
    assert [(b.text, b.data) for b in request.buttons] == [
        (str(s), f"csat:{dialog.id}:{s}") for s in range(1, 6)
    ]
    assert all(len(b.data.encode()) <= 64 for b in request.buttons)  # Telegram's limit
    assert dialog.rating_pending


def test_other_channels_are_asked_for_a_digit_in_the_text() -> None:
    dialog = assigned_to("ann")
    dialog.channel_type = ChannelType.WHATSAPP
    request = closed(dialog, Csat(enabled=True, question="Rate us?", scale=3))[-1]
    assert isinstance(request, MessageAppended)
    assert request.buttons == ()
    assert request.text == "Rate us?\nReply with a digit from 1 to 3."


def test_no_request_when_csat_is_off_for_spam_or_a_second_close() -> None:
    off = assigned_to("ann")
    assert len(closed(off, Csat(enabled=False))) == 1
    spam = assigned_to("ann")
    assert len(closed(spam, reason=CloseReason.SPAM)) == 1
    assert not spam.rating_requested
    twice = assigned_to("ann")
    closed(twice)
    record(twice, twice.reopen("ann"))
    assert len(closed(twice)) == 1  # asked once per dialog
    # A decision that does not close asks nothing.
    other = assigned_to("ann")
    assert other.rating_request_after(other.rename("ann", "x"), CSAT, now=T0) == []


def test_the_customer_rates_once_and_a_second_answer_is_ignored() -> None:
    dialog = assigned_to("ann")
    closed(dialog)
    [rated] = dialog.rate_by_customer(4, scale=5)
    assert isinstance(rated, DialogRated)
    assert (rated.score, rated.scale, rated.by, rated.operator_id) == (4, 5, "customer", "ann")
    record(dialog, [rated])
    assert dialog.customer_rating == (4, 5) and not dialog.rating_pending
    assert dialog.rate_by_customer(1, scale=5) == []
    assert describe(rated) == "The customer rated the dialog 4/5"


def test_a_rating_nobody_asked_for_or_out_of_scale_is_refused() -> None:
    dialog = assigned_to("ann")
    with pytest.raises(RatingNotRequested):
        dialog.rate_by_customer(5, scale=5)  # a forged button press
    closed(dialog)
    for score in (0, 6):
        with pytest.raises(ScoreOutOfScale):
            dialog.rate_by_customer(score, scale=5)
    assert dialog.rate_by_customer(5, scale=5)


def test_the_operator_rates_the_customer_and_may_correct_it() -> None:
    dialog = assigned_to("ann")
    [first] = dialog.rate_by_operator("ann", 2, scale=5, comment=" rude ")
    assert isinstance(first, DialogRated)
    assert (first.by, first.actor_id, first.comment, first.score) == ("operator", "ann", "rude", 2)
    record(dialog, [first])
    assert dialog.rate_by_operator("ann", 2, scale=5, comment="rude") == []  # a retry
    assert dialog.rate_by_operator("ann", 3, scale=5)  # corrected
    with pytest.raises(ScoreOutOfScale):
        dialog.rate_by_operator("ann", 6, scale=5)
    with pytest.raises(ScoreOutOfScale):
        dialog.rate_by_operator("ann", 0, scale=5)
    assert describe(first) == "ann rated the customer 2/5: rude"


def test_classify_takes_only_the_lines_values() -> None:
    dialog = assigned_to("ann")
    [event] = dialog.classify(
        "ann",
        CLASSES,
        type="complaint",
        reasons=["delivery", "payment", "delivery"],
        status="resolved",
    )
    assert isinstance(event, DialogClassified)
    assert (event.type, event.reasons, event.status) == (
        "complaint",
        ("delivery", "payment"),
        "resolved",
    )
    record(dialog, [event])
    assert (
        dialog.classify(
            "ann", CLASSES, type="complaint", reasons=["delivery", "payment"], status="resolved"
        )
        == []
    )
    assert describe(event) == (
        "ann classified the dialog: type complaint; reasons delivery, payment; status resolved"
    )
    with pytest.raises(UnknownClassType):
        dialog.classify("ann", CLASSES, type="order", reasons=[], status=None)
    with pytest.raises(UnknownClassReason):
        dialog.classify("ann", CLASSES, type=None, reasons=["weather"], status=None)
    with pytest.raises(UnknownClassStatus):
        dialog.classify("ann", CLASSES, type=None, reasons=[], status="open")
    with pytest.raises(NotClassifiable):
        dialog.classify("ann", Classification(), type=None, reasons=[], status=None)


def test_ratings_and_classification_survive_a_snapshot() -> None:
    dialog = assigned_to("ann")
    closed(dialog)
    record(dialog, dialog.rate_by_customer(5, scale=5))
    record(dialog, dialog.rate_by_operator("ann", 3, scale=5, comment="ok"))
    record(dialog, dialog.classify("ann", CLASSES, type="question", reasons=[], status=None))
    restored = Dialog.from_snapshot(dialog.to_snapshot())
    assert restored.customer_rating == (5, 5)
    assert restored.operator_rating == ("ann", 3, 5, "ok")
    assert restored.classification == ("question", (), None, "ann")
    assert restored.rating_requested and not restored.rating_pending


def test_button_data_and_digit_answers() -> None:
    dialog_id = uuid.uuid4()
    assert parse_rating_data(rating_button_data(dialog_id, 3)) == (dialog_id, 3)
    for data in ("csat", "csat:x:1", f"consent:{dialog_id}:1", f"csat:{dialog_id}:", "csat::1"):
        assert parse_rating_data(data) is None
    assert [digit_score(t, 5) for t in ("4", " 5 ", "0", "6", "4!", "four", "٣", None)] == [
        4,
        5,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
