"""max_dialogs and manual takes: take, the first reply and reopen respect it (supervisors and lines
with `manual_take_beyond_capacity` excepted), also when one operator takes several at once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from .dialogs_stack import DialogsStack

# config/demo.yaml: ann and bob hold at most 2 dialogs, sue (supervisor) 5.


async def take(stack: DialogsStack, dialog_id: uuid.UUID, who: str) -> tuple[int, str | None]:
    reply = await stack.post(f"/api/v1/dialogs/{dialog_id}/take", who)
    return reply.status, reply.code


async def test_an_operator_at_max_dialogs_can_neither_take_nor_answer_another(
    stack: DialogsStack,
) -> None:
    first, second, third, fourth = [await stack.open_dialog(f"500{i}") for i in range(4)]
    assert await take(stack, first, "ann") == (200, None)
    answered = await stack.post(
        f"/api/v1/dialogs/{second}/messages", "ann", json={"text": "hi", "client_message_id": "1"}
    )
    assert answered.status == 202  # the first reply took it: 2 of 2

    assert await take(stack, third, "ann") == (409, "at_capacity")
    refused = await stack.post(
        f"/api/v1/dialogs/{third}/messages", "ann", json={"text": "hi", "client_message_id": "2"}
    )
    assert (refused.status, refused.code) == (409, "at_capacity")
    # Nothing of the refused reply was recorded: still unassigned, no outbound message.
    still = (await stack.dialog(third, "ann")).body
    assert (still["status"], still["assignee_id"]) == ("unassigned", None)
    assert [m for m in await stack.timeline(third) if m["direction"] == "out"] == []

    # Accept-and-close is no take that lasts: allowed at capacity, and it leaves her at 2.
    closed = await stack.post(f"/api/v1/dialogs/{fourth}/close", "ann")
    assert (closed.status, closed.body["assignee_id"]) == (200, "ann")
    assert await take(stack, third, "ann") == (409, "at_capacity")
    # Reopening makes her the assignee too.
    reopened = await stack.post(f"/api/v1/dialogs/{fourth}/reopen", "ann")
    assert (reopened.status, reopened.code) == (409, "at_capacity")
    assert (await stack.dialog(fourth, "ann")).body["status"] == "closed"

    # Room again once she closes one; the take twice of her own dialog is still a no-op.
    assert (await stack.post(f"/api/v1/dialogs/{first}/close", "ann")).status == 200
    assert await take(stack, second, "ann") == (200, None)
    assert await take(stack, third, "ann") == (200, None)
    active = await stack.get("/api/v1/dialogs", "ann", tab="active")
    assert sorted(d["id"] for d in active.body["items"]) == sorted([str(second), str(third)])


async def test_concurrent_takes_by_one_operator_never_pass_max_dialogs(
    stack: DialogsStack,
) -> None:
    # Counting without a lock, every concurrent take sees 0 of 2 and all of them pass.
    dialog_ids = [await stack.open_dialog(f"510{i}") for i in range(6)]
    answers = await asyncio.gather(*(take(stack, d, "ann") for d in dialog_ids))
    assert sorted(answers, key=str) == [(200, None)] * 2 + [(409, "at_capacity")] * 4
    active = await stack.get("/api/v1/dialogs", "ann", tab="active")
    assert len(active.body["items"]) == 2

    # The same race through first replies.
    more = [await stack.open_dialog(f"520{i}") for i in range(4)]
    replies = await asyncio.gather(
        *(
            stack.post(
                f"/api/v1/dialogs/{d}/messages",
                "bob",
                json={"text": "hi", "client_message_id": "1"},
            )
            for d in more
        )
    )
    assert (
        sorted((r.status, r.code) for r in replies)
        == [(202, None)] * 2 + [(409, "at_capacity")] * 2
    )


async def test_a_supervisor_is_not_limited(stack: DialogsStack) -> None:
    dialog_ids = [await stack.open_dialog(f"530{i}") for i in range(6)]  # sue: max 5
    answers = await asyncio.gather(*(take(stack, d, "sue") for d in dialog_ids))
    assert answers == [(200, None)] * 6


@pytest.mark.parametrize(
    "lines_file", [Path(__file__).with_name("lines_take_beyond_capacity.yaml")]
)
async def test_a_line_may_let_its_operators_take_beyond_max_dialogs(
    stack: DialogsStack,
) -> None:
    dialog_ids = [await stack.open_dialog(f"540{i}") for i in range(3)]  # ann: max 1
    answers = await asyncio.gather(*(take(stack, d, "ann") for d in dialog_ids))
    assert answers == [(200, None)] * 3
