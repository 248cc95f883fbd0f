"""The timers' rules, pure: what each timer counts from and when it is due."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from openlines.events.catalog import CloseReason, Direction
from openlines.events.lines import LinesConfig
from openlines.events.testing import factories
from openlines.routing import clocks
from openlines.routing.clocks import DialogClock, SlaMarker

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
D = uuid.uuid4()

LINES = LinesConfig.model_validate(
    {
        "operators": [{"id": "ann"}, {"id": "bob"}],
        "lines": [
            {
                "id": "demo",
                "channels": [
                    {"id": "tg-demo", "type": "telegram"},
                    {
                        "id": "mail",
                        "type": "email",
                        "sla": {"warning_seconds": 600, "breach_seconds": 1200},
                    },
                ],
                "operators": ["ann", "bob"],
                "sla": {"warning_seconds": 30, "breach_seconds": 60},
                "auto_close": {"inactive_seconds": 300, "unassigned_seconds": 900},
                "reroute_after_seconds": 90,
            }
        ],
    }
)
LINE = LINES.lines[0]


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Story:
    """A dialog's events, folded one by one as routing's consumer does."""

    def __init__(self, channel_id: str = "tg-demo") -> None:
        self.version = 0
        opened = factories.dialog_opened(D, channel_id=channel_id, line_id="demo")
        self.clock: DialogClock | None = None
        self.then(opened, 0)

    def then(self, event: object, at: float) -> Story:
        self.version += 1
        self.clock = clocks.observe(self.clock, event, self.version, s(at))
        return self

    def says(self, at: float) -> Story:
        return self.then(factories.message_appended(D, sent_at=s(at)), at)

    def answers(self, at: float, who: str = "ann") -> Story:
        reply = factories.message_appended(D, direction=Direction.OUT, author_id=who, sent_at=s(at))
        return self.then(reply, at)

    def assigned(self, who: str, at: float) -> Story:
        return self.then(factories.dialog_assigned(D, who, line_id="demo"), at)

    @property
    def plan(self) -> clocks.Plan:
        assert self.clock is not None
        return clocks.plan(self.clock, LINE)


def test_sla_counts_from_the_customers_last_unanswered_message() -> None:
    story = Story().says(0).says(20)
    assert (story.plan.sla_warning, story.plan.sla_breach) == (s(50), s(80))
    assert story.answers(25).plan.sla_warning is None  # a reply clears it
    assert story.says(40).plan.sla_warning == s(70)  # the next message starts a new count


def test_reassignment_does_not_reset_the_sla() -> None:
    story = Story().says(0).assigned("ann", 5).assigned("bob", 20)
    assert (story.plan.sla_warning, story.plan.sla_breach) == (s(30), s(60))


def test_a_channel_overrides_the_lines_thresholds() -> None:
    story = Story(channel_id="mail").says(0)
    assert (story.plan.sla_warning, story.plan.sla_breach) == (s(600), s(1200))


def test_a_marker_is_armed_once_per_waiting_period() -> None:
    story = Story().says(0)
    assert story.clock is not None
    warned = DialogClock(**{**story.clock.__dict__, "sla_reached": SlaMarker.WARNING})
    assert clocks.plan(warned, LINE).sla_warning is None
    assert clocks.plan(warned, LINE).sla_breach == s(60)
    assert clocks.sla_due(warned, SlaMarker.BREACH, s(0))
    assert not clocks.sla_due(warned, SlaMarker.WARNING, s(0))
    assert not clocks.sla_due(story.clock, SlaMarker.WARNING, s(-5))  # armed for another message


def test_auto_close_counts_from_the_last_message_assigned_or_not() -> None:
    story = Story().says(0)
    assert (story.plan.auto_close, story.plan.close_reason) == (s(900), CloseReason.AUTO_UNASSIGNED)
    story.assigned("ann", 10).answers(40)
    assert (story.plan.auto_close, story.plan.close_reason) == (s(340), CloseReason.AUTO_INACTIVE)
    story.then(factories.dialog_closed(D, "ann", line_id="demo"), 50)
    assert story.plan == clocks.Plan()  # closed: nothing armed


def test_reroute_counts_from_the_message_or_the_assignment_whichever_came_later() -> None:
    story = Story().says(0)
    assert story.plan.reroute is None  # nobody to take it from
    assert story.assigned("ann", 30).plan.reroute == s(120)
    assert story.says(40).plan.reroute == s(130)
    assert story.answers(50).plan.reroute is None


def test_an_event_already_applied_changes_nothing() -> None:
    story = Story().says(0)
    before = story.clock
    assert clocks.observe(before, factories.message_appended(D, sent_at=s(10)), 1, s(10)) is before
    assert clocks.observe(None, factories.message_appended(D), 5, s(0)) is None  # never opened


def test_the_test_time_scale_shortens_every_timer() -> None:
    fast = LINE.model_copy(update={"test_time_scale": 0.1})
    story = Story().says(0).assigned("ann", 0)
    assert story.clock is not None
    due = clocks.plan(story.clock, fast)
    assert (due.sla_warning, due.sla_breach, due.reroute, due.auto_close) == (
        s(3),
        s(6),
        s(9),
        s(30),
    )
    assert fast.sla_seconds("tg-demo") == (3.0, 6.0)
