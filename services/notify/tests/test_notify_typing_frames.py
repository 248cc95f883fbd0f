"""Client frames, pure: parsing, the typing throttle, and whom a colleague's typing reaches."""

from __future__ import annotations

import uuid

import pytest

from openlines.events.catalog.common import DialogStatus
from openlines.kit.access import Role, Scope
from openlines.notify.domain import DialogView, reason_for, watchers
from openlines.notify.frames import BadFrame, Ping, Throttle, Typing, parse

ANN = Scope("ann", member_lines=frozenset({"demo"}))
BOB = Scope("bob", member_lines=frozenset({"demo"}))
ZED = Scope("zed", member_lines=frozenset({"other"}))
SUE = Scope("sue", Role.SUPERVISOR, supervised_lines=None)
SUE_OTHER = Scope("sue", Role.SUPERVISOR, supervised_lines=frozenset({"other"}))


def test_frames_parse_or_are_refused() -> None:
    dialog_id = uuid.uuid4()
    assert isinstance(parse('{"type": "ping", "n": 1}'), Ping)
    assert parse(f'{{"type": "typing", "dialog_id": "{dialog_id}"}}') == Typing(
        type="typing", dialog_id=dialog_id
    )
    for bad in (
        "not json",
        "[]",
        "{}",
        '{"type": "dance"}',
        '{"type": "typing"}',
        '{"type": "typing", "dialog_id": "nope"}',
        '{"type": "typing", "dialog_id": 5}',
        f'{{"type": "typing", "dialog_id": "{dialog_id}", "extra": 1}}',
    ):
        with pytest.raises(BadFrame):
            parse(bad)


def test_the_throttle_passes_one_per_interval_per_operator_and_dialog() -> None:
    now = [100.0]
    throttle = Throttle(3.0, clock=lambda: now[0])
    a, b = uuid.uuid4(), uuid.uuid4()
    assert throttle.allow("ann", a)
    assert not throttle.allow("ann", a)
    assert throttle.allow("ann", b)  # another dialog
    assert throttle.allow("bob", a)  # another operator
    now[0] += 2.9
    assert not throttle.allow("ann", a)
    now[0] += 0.1
    assert throttle.allow("ann", a)


def test_the_throttle_forgets_old_keys() -> None:
    now = [0.0]
    throttle = Throttle(3.0, clock=lambda: now[0])
    for _ in range(1024):
        throttle.allow("ann", uuid.uuid4())
    now[0] += 10
    throttle.allow("ann", uuid.uuid4())  # over the bound: the stale keys go
    assert len(throttle) == 1


def test_typing_reaches_whoever_a_push_about_the_dialog_would_reach() -> None:
    held = DialogView("demo", DialogStatus.ACTIVE, assignee="ann", participants=frozenset({"zed"}))
    reached = {
        s.operator_id + s.role
        for s in (ANN, BOB, ZED, SUE, SUE_OTHER)
        if reason_for(s, watchers(held))
    }
    assert reached == {"ann" + Role.OPERATOR, "zed" + Role.OPERATOR, "sue" + Role.SUPERVISOR}
    queued = DialogView("demo", DialogStatus.UNASSIGNED)
    assert [reason_for(s, watchers(queued)) is not None for s in (ANN, BOB, ZED, SUE_OTHER)] == [
        True,
        True,
        False,
        False,
    ]
