"""A Dialog's snapshot holds its whole state: restoring it gives what replaying the events gives
(pure: no I/O). The writer's use of snapshots is tested in libs/kit/tests/test_streamwriter.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from openlines.dialogs.domain import NO_LIMIT, Dialog, DomainError
from openlines.events.catalog import (
    CloseReason,
    DeliveryStatus,
    DialogLinkedToCrm,
    DialogPinned,
    MessageReceived,
)
from openlines.events.envelope import EventPayload
from openlines.events.testing.factories import message_received

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OPERATORS = ("ann", "bob")


def received(n: int, quote: int | None) -> MessageReceived:
    return message_received(
        text=f"message {n}",
        external_message_id=f"m{n}",
        name="Carl",
        username="carl",
        sent_at=T0 + timedelta(seconds=n),
        line_id=None,
        reply_to_external_id=None if quote is None else f"p{quote}",
    )


Step = Callable[[Dialog, int], Sequence[EventPayload]]


def _outbound(dialog: Dialog, pick: int) -> uuid.UUID | None:
    ids = [m.message_id for m in dialog.messages.values() if m.direction == "out"]
    return ids[pick % len(ids)] if ids else None


def _delivered(status: DeliveryStatus) -> Step:
    def step(dialog: Dialog, n: int) -> Sequence[EventPayload]:
        found = _outbound(dialog, n)
        if found is None:
            return []
        return dialog.update_delivery(found, status, provider_message_id=f"p{n % 5}")

    return step


STEPS: dict[str, Step] = {
    "customer writes": lambda d, n: d.receive(
        received(n, n % 3 or None), message_id=uuid.uuid5(d.id, f"in{n}")
    ),
    "operator replies": lambda d, n: d.reply(
        OPERATORS[n % 2],
        f"reply {n}",
        message_id=uuid.uuid5(d.id, f"out{n}"),
        client_message_id=f"c{n % 4}",
        now=T0 + timedelta(seconds=n),
        max_text_length=4096,
        is_supervisor=n % 3 == 0,
        load=NO_LIMIT,
    ),
    "routing assigns": lambda d, n: d.assign_by_routing(OPERATORS[n % 2], line_id="demo"),
    "operator takes over": lambda d, n: d.take(OPERATORS[n % 2], may_take_over=True),
    "sent": _delivered(DeliveryStatus.SENT),
    "delivered": _delivered(DeliveryStatus.DELIVERED),
    "failed": _delivered(DeliveryStatus.FAILED),
    "read": lambda d, n: d.mark_read(OPERATORS[n % 2]),
    "pinned": lambda d, n: [
        DialogPinned(dialog_id=d.id, operator_id=OPERATORS[n % 2], pinned=n % 3 != 0)
    ],
    "back to the queue": lambda d, n: d.return_to_queue("away"),
    "closed": lambda d, n: d.close(OPERATORS[n % 2], CloseReason.OPERATOR),
    "spam": lambda d, n: d.mark_spam(OPERATORS[n % 2]),
    "reopened": lambda d, n: d.reopen(OPERATORS[n % 2], load=NO_LIMIT),
    "transferred": lambda d, n: d.transfer_to_operator(
        "sue", OPERATORS[n % 2], line_operators=OPERATORS, by_supervisor=True, load=NO_LIMIT
    ),
    "moved to a line": lambda d, n: d.transfer_to_line("sue", ("vip", "demo")[n % 2]),
    "joined": lambda d, n: d.join(("ann", "bob", "sue")[n % 3], actor_id="sue"),
    "left": lambda d, n: d.leave(("ann", "bob", "sue")[n % 3]),
    "note": lambda d, n: d.add_note(
        OPERATORS[n % 2],
        f"note {n}",
        message_id=uuid.uuid5(d.id, f"note{n}"),
        mentions=("sue", "zed")[: n % 3],
        now=T0,
        max_text_length=4096,
    ),
    "linked to CRM": lambda d, n: d.link_crm(
        DialogLinkedToCrm(
            dialog_id=d.id,
            customer_id=uuid.uuid5(d.id, "customer"),
            lead_id=uuid.uuid5(d.id, f"lead{n % 2}") if n % 3 else None,
        ),
        system_message_id=uuid.uuid5(d.id, f"sys{n}"),
        now=T0,
    ),
}


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(sorted(STEPS)), st.integers(0, 50)), max_size=40))
def test_a_snapshot_restores_the_state_the_events_built(steps: list[tuple[str, int]]) -> None:
    dialog = Dialog(uuid.uuid4())
    history: list[EventPayload] = list(
        dialog.open_from_inbound(received(0, None), message_id=uuid.uuid4(), line_id="demo")
    )
    for event in history:
        dialog.apply(event, T0)
    for i, (name, n) in enumerate(steps):
        try:
            decided = STEPS[name](dialog, n)
        except DomainError:
            continue
        at = T0 + timedelta(minutes=i)
        for event in decided:
            dialog.apply(event, at)
        history += decided
        # Through JSON, as the snapshots table stores it.
        restored = Dialog.from_snapshot(json.loads(json.dumps(dialog.to_snapshot())))
        assert restored == dialog
        assert restored.to_snapshot() == dialog.to_snapshot()
