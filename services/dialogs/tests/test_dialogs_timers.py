"""Routing's timers as dialogs sees them: guarded close and re-route commands, SLA markers
in the timeline."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from openlines.events.catalog import (
    AssignDialog,
    CloseDialog,
    CloseReason,
    ReturnToQueue,
    SlaWarningReached,
)
from openlines.events.topics import DIALOG_COMMANDS, ROUTING

from .dialogs_stack import DialogsStack


async def version(stack: DialogsStack, dialog_id: uuid.UUID) -> int:
    async with stack.runtime.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT version FROM dialogs WHERE id = :id"), {"id": dialog_id}
        )
        return int(found.scalar_one())


async def command(stack: DialogsStack, payload: AssignDialog | CloseDialog | ReturnToQueue) -> None:
    env = await stack.publish(
        DIALOG_COMMANDS, payload, stream_id=str(payload.dialog_id), event_id=None
    )
    await stack.wait_handled(env)


async def assigned_dialog(stack: DialogsStack, chat: str) -> uuid.UUID:
    dialog_id = await stack.open_dialog(chat)
    await command(stack, AssignDialog(dialog_id=dialog_id, operator_id="ann", line_id="demo"))
    return dialog_id


async def test_an_auto_close_decided_on_an_older_version_is_ignored(stack: DialogsStack) -> None:
    dialog_id = await assigned_dialog(stack, "7101")
    decided = await version(stack, dialog_id)
    await stack.customer_writes("7101", "still there?")  # the dialog changes meanwhile
    await stack.eventually(lambda: _newer(stack, dialog_id, decided))
    stale = CloseDialog(
        dialog_id=dialog_id, reason=CloseReason.AUTO_INACTIVE, expected_version=decided
    )
    await command(stack, stale)
    assert (await stack.dialog(dialog_id)).body["status"] == "active"

    current = CloseDialog(
        dialog_id=dialog_id,
        reason=CloseReason.AUTO_INACTIVE,
        expected_version=await version(stack, dialog_id),
    )
    await command(stack, current)
    assert (await stack.dialog(dialog_id)).body["status"] == "closed"
    # The close's line is the last staff-only one (the demo line's rating request follows it).
    timeline = await stack.timeline(dialog_id)
    [*_, closed] = [item for item in timeline if item["direction"] == "system"]
    assert closed["text"] == (
        "Closed automatically: no message for the line's inactivity time (auto_inactive)"
    )


async def _newer(stack: DialogsStack, dialog_id: uuid.UUID, than: int) -> bool:
    return await version(stack, dialog_id) > than


async def test_a_reroute_returns_the_dialog_to_the_queue_and_says_why(stack: DialogsStack) -> None:
    dialog_id = await assigned_dialog(stack, "7102")
    back = ReturnToQueue(
        dialog_id=dialog_id,
        reason="no_answer",
        operator_id="ann",
        expected_version=await version(stack, dialog_id),
    )
    await command(stack, back)
    body = (await stack.dialog(dialog_id)).body
    assert (body["status"], body["assignee_id"]) == ("unassigned", None)
    assert (await stack.timeline(dialog_id))[-1]["text"] == (
        "Returned to the queue: ann did not answer in time"
    )


async def test_an_sla_marker_shows_in_the_timeline(
    stack: DialogsStack,
) -> None:
    dialog_id = await assigned_dialog(stack, "7103")
    body = (await stack.dialog(dialog_id)).body
    waiting_since = body["sla"]["waiting_since"]
    assert waiting_since is not None
    marker = SlaWarningReached(
        dialog_id=dialog_id,
        line_id="demo",
        operator_id="ann",
        waiting_since=datetime.fromisoformat(waiting_since),
        threshold_seconds=120,
    )
    env = await stack.publish(ROUTING, marker, stream_id=str(dialog_id), event_id=None)
    await stack.wait_handled(env)
    timeline = await stack.timeline(dialog_id)
    assert (timeline[-1]["direction"], timeline[-1]["text"]) == (
        "system",
        "SLA warning: the customer's message has waited 120 s without an answer (ann)",
    )
