"""Inbound messages open, append to and re-open dialogs; duplicates have no effect."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from openlines.dialogs.domain import AlreadyAssigned
from openlines.dialogs.handlers import Handlers, opened_dialog_id
from openlines.dialogs.tables import dialogs
from openlines.dialogs.writer import DialogWriter
from openlines.events.catalog import MessageReceived
from openlines.events.envelope import Envelope
from openlines.events.lines import load_lines
from openlines.events.testing import factories
from openlines.events.topics import INBOUND
from openlines.kit.subscription import Subscription

from .dialogs_stack import DialogsStack


async def test_inbound_message_opens_a_dialog_in_the_unassigned_tab(stack: DialogsStack) -> None:
    env = await stack.customer_writes("1001", "I need help")
    dialog_id = opened_dialog_id(env.event_id)

    async def listed() -> list:
        page = await stack.get("/api/v1/dialogs", "ann", tab="unassigned")
        return [d for d in page.body["items"] if d["id"] == str(dialog_id)]

    [dialog] = await stack.eventually(listed)
    assert dialog["status"] == "unassigned"
    assert (dialog["line_id"], dialog["channel_id"], dialog["channel_type"]) == (
        "demo",
        "tg-demo",
        "telegram",
    )
    assert dialog["customer"]["name"] == "Customer 1001"
    assert dialog["customer"]["external_id"] == "1001"
    assert dialog["assignee_id"] is None and dialog["participants"] == []
    assert dialog["last_message"]["text"] == "I need help"
    assert dialog["last_message"]["direction"] == "in"
    assert dialog["unread_count"] == 1
    assert dialog["sla"]["state"] == "ok" and dialog["sla"]["waiting_since"] is not None
    assert set(dialog["crm"]) == {
        "customer_id",
        "lead_id",
        "contact_id",
        "company_id",
        "deal_id",
        "deal_ids",
    }
    assert dialog["created_at"] and dialog["updated_at"]

    # The same JSON by id; the dialog is not in the other tabs.
    assert (await stack.dialog(dialog_id, "ann")).body == dialog
    for tab in ("active", "closed", "spam"):
        page = await stack.get("/api/v1/dialogs", "sue", tab=tab)
        assert page.body["items"] == []
    # An operator outside the line sees nothing, not even that it exists.
    assert (await stack.dialog(dialog_id, "zed")).code == "not_found"
    assert (await stack.get("/api/v1/dialogs", "zed")).body["items"] == []


async def test_duplicates_are_ignored_and_a_second_message_appends(stack: DialogsStack) -> None:
    first = await stack.customer_writes("1002", "one", external_message_id="10")
    dialog_id = opened_dialog_id(first.event_id)
    # The very same event again, and the same provider message under another event id.
    await stack.customer_writes("1002", "one", external_message_id="10", event_id=first.event_id)
    await stack.customer_writes("1002", "one again", external_message_id="10", event_id=None)
    await stack.customer_writes("1002", "two", external_message_id="11")

    async def two_messages() -> list:
        items = await stack.timeline(dialog_id) if await stack._exists(dialog_id) else []
        return items if len(items) >= 2 else []

    # One partition per conversation: once "two" shows, the duplicates before it were handled.
    items = await stack.eventually(two_messages)
    assert [(m["direction"], m["text"]) for m in items] == [("in", "one"), ("in", "two")]
    dialog = (await stack.dialog(dialog_id)).body
    assert dialog["unread_count"] == 2
    all_dialogs = (await stack.get("/api/v1/dialogs", "sue")).body["items"]
    assert [d["id"] for d in all_dialogs] == [str(dialog_id)]


async def test_after_close_the_customer_opens_a_new_dialog(stack: DialogsStack) -> None:
    first_id = await stack.open_dialog("1003", "first")
    closed = await stack.post(f"/api/v1/dialogs/{first_id}/close", "sue")
    assert closed.status == 200 and closed.body["status"] == "closed"

    env = await stack.customer_writes("1003", "back again")
    second_id = opened_dialog_id(env.event_id)
    await stack.eventually(lambda: stack._exists(second_id))
    assert second_id != first_id
    second = (await stack.dialog(second_id)).body
    assert second["status"] == "unassigned"
    assert second["last_message"]["text"] == "back again"
    assert [m["text"] for m in await stack.timeline(first_id) if m["direction"] == "in"] == [
        "first"
    ]
    assert (await stack.dialog(first_id)).body["status"] == "closed"


async def test_a_customer_edit_updates_the_timeline(stack: DialogsStack) -> None:
    env = await stack.customer_writes("1004", "helo", external_message_id="5")
    dialog_id = opened_dialog_id(env.event_id)
    await stack.eventually(lambda: stack._exists(dialog_id))
    edit = factories.message_edited("5", "hello", chat="1004")
    await stack.publish(INBOUND, edit, stream_id=edit.conversation_key, event_id=None)

    async def edited() -> bool:
        [message] = await stack.timeline(dialog_id)
        return message["text"] == "hello" and message["edited_at"] is not None

    await stack.eventually(edited)


async def test_concurrent_messages_of_one_conversation_open_one_dialog(
    stack: DialogsStack,
) -> None:
    """Two consumers (e.g. around a rebalance) handle two messages of one conversation at the
    same moment, when it is new and again after its dialog was closed: the conversation lock
    lets exactly one of them open a dialog, and the other appends to it."""
    lines = load_lines(stack.runtime.settings.lines_file)
    handlers = Handlers(DialogWriter(stack.runtime.event_store), lines)
    engine = stack.runtime.engine

    inputs: Subscription = Subscription("dialogs", topics=[INBOUND])
    handlers.subscribe(inputs)

    async def handle(env: Envelope) -> None:
        async with engine.begin() as conn:
            await inputs.dispatch(conn, env)

    async def dialogs_of(key: str) -> list:
        async with engine.connect() as conn:
            query = (
                select(dialogs.c.id, dialogs.c.status, dialogs.c.inbound_count)
                .where(dialogs.c.conversation_key == key)
                .order_by(dialogs.c.created_at)
            )
            return list((await conn.execute(query)).all())

    for round_ in range(3):
        chat = f"105{round_}"
        key = f"tg-demo:{chat}"
        for wave in range(2):
            first, second = (
                Envelope.new(
                    received(chat, f"{wave}-{i}"), stream_id=key, stream_version=0, producer="test"
                )
                for i in (1, 2)
            )
            await asyncio.gather(handle(first), handle(second))
            await handle(first)  # a redelivery that slipped past the inbox changes nothing
            found = await dialogs_of(key)
            assert len(found) == wave + 1, found
            newest = found[-1]
            assert (newest.status, newest.inbound_count) == ("unassigned", 2)
            texts = sorted(m["text"] for m in await stack.timeline(newest.id))
            assert texts == [f"message {wave}-1", f"message {wave}-2"]
            closed = await stack.post(f"/api/v1/dialogs/{newest.id}/close", "sue")
            assert closed.status == 200


def received(chat: str, external_message_id: str) -> MessageReceived:
    return factories.message_received(
        chat,
        f"message {external_message_id}",
        external_message_id=external_message_id,
        name="Racer",
    )


async def test_a_dialog_loaded_before_another_writer_is_decided_again_fresh(
    stack: DialogsStack,
) -> None:
    first = await stack.customer_writes("1009", "one", external_message_id="90")
    dialog_id = opened_dialog_id(first.event_id)
    await stack.eventually(lambda: stack._exists(dialog_id))
    writer = DialogWriter(stack.runtime.event_store)
    engine = stack.runtime.engine
    async with engine.begin() as conn:
        stale = await writer.load(conn, dialog_id)
    async with engine.begin() as conn:  # ann takes it meanwhile
        await writer.execute(conn, dialog_id, lambda d: d.take("ann", may_take_over=False))
    async with engine.begin() as conn:
        # bob decides on the stale (unassigned) state first: that append clashes, and the
        # reloaded dialog shows ann holding it, so bob's take is refused instead of retried.
        with pytest.raises(AlreadyAssigned):
            await writer.execute(
                conn, dialog_id, lambda d: d.take("bob", may_take_over=False), loaded=stale
            )
    assert (await stack.dialog(dialog_id)).body["assignee_id"] == "ann"
