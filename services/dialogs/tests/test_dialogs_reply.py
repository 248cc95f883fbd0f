"""Operator replies, their delivery statuses, CRM links, and rebuilding the read model."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from openlines.dialogs.handlers import opened_dialog_id
from openlines.dialogs.projection import rebuild
from openlines.dialogs.tables import conversations, dialogs, messages
from openlines.events.catalog import (
    ChannelType,
    DeliveryReceiptReceived,
    DeliveryStatus,
    DialogLinkedToCrm,
    MessageAppended,
    MessageDispatched,
    MessageDispatchFailed,
)
from openlines.events.envelope import Envelope, utc_now
from openlines.events.topics import CRM, INBOUND, OUTBOUND

from .dialogs_stack import DialogsStack


async def send(stack: DialogsStack, dialog_id: uuid.UUID, text: str, client: str, who="ann"):
    return await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        who,
        json={"text": text, "client_message_id": client},
    )


async def dispatched(stack: DialogsStack, dialog_id: uuid.UUID, message_id: str, provider: str):
    result = MessageDispatched(
        dialog_id=dialog_id,
        message_id=uuid.UUID(message_id),
        channel_id="tg-demo",
        provider_message_id=provider,
        attempts=1,
    )
    return await stack.publish(OUTBOUND, result, stream_id=str(dialog_id), event_id=None)


async def receipt(stack: DialogsStack, chat_id: str, provider: str, status: DeliveryStatus):
    event = DeliveryReceiptReceived(
        channel_id="tg-demo",
        channel_type=ChannelType.TELEGRAM,
        conversation_key=f"tg-demo:{chat_id}",
        provider_message_id=provider,
        status=status,
        at=utc_now(),
    )
    return await stack.publish(INBOUND, event, stream_id=event.conversation_key, event_id=None)


async def test_reply_is_queued_published_and_tracked_to_delivery(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("3001", "where is my order?")
    accepted = await send(stack, dialog_id, "On its way!", "client-1")
    assert accepted.status == 202
    assert accepted.body["status"] == "queued"
    message_id = accepted.body["message_id"]
    # A client retry names the same message and records nothing new.
    retried = await send(stack, dialog_id, "On its way!", "client-1")
    assert (retried.status, retried.body["message_id"]) == (202, message_id)

    # Answering made ann responsible and stopped the SLA clock (read-your-writes).
    dialog = (await stack.dialog(dialog_id, "ann")).body
    assert (dialog["status"], dialog["assignee_id"]) == ("active", "ann")
    assert dialog["sla"] == {"state": "ok", "waiting_since": None}
    assert dialog["last_message"]["direction"] == "out"

    # What outbound consumes: MessageAppended(out, queued) with enough to send it.
    def appended_out(seen: list[Envelope]) -> list[MessageAppended]:
        return [
            e.payload
            for e in seen
            if isinstance(e.payload, MessageAppended) and e.payload.direction == "out"
        ]

    events = await stack.dialog_events(lambda seen: bool(appended_out(seen)))
    [out] = appended_out(events)
    assert str(out.message_id) == message_id
    assert (out.status, out.text, out.author_id) == (DeliveryStatus.QUEUED, "On its way!", "ann")
    assert (out.channel_id, out.conversation_key) == ("tg-demo", "tg-demo:3001")
    assert out.client_message_id == "client-1"

    await dispatched(stack, dialog_id, message_id, provider="555")

    async def delivery() -> dict | None:
        outs = [m for m in await stack.timeline(dialog_id, "ann") if m["direction"] == "out"]
        assert len(outs) == 1  # the retry appended nothing
        return outs[0]["delivery"]

    async def status_is(wanted: str) -> bool:
        found = await delivery()
        return found is not None and found["status"] == wanted

    await stack.eventually(lambda: status_is("sent"))
    assert (await delivery()) == {"status": "sent", "reason": None, "provider_message_id": "555"}
    await receipt(stack, "3001", "555", DeliveryStatus.DELIVERED)
    await stack.eventually(lambda: status_is("delivered"))


async def test_a_customer_quoting_the_operators_reply_keeps_reply_to(stack: DialogsStack) -> None:
    # The customer's own message "1000"; ann answers; outbound sends it as provider id "1001";
    # the customer quotes that answer (Telegram: reply_to_message.message_id = 1001).
    opening = await stack.customer_writes("3010", "is it in stock?", external_message_id="1000")
    dialog_id = opened_dialog_id(opening.event_id)
    await stack.wait_handled(opening)
    answer = await send(stack, dialog_id, "Yes, two left", "c-1")
    assert answer.status == 202, answer.body
    await stack.wait_handled(await dispatched(stack, dialog_id, answer.body["message_id"], "1001"))
    await stack.customer_writes("3010", "I take both", reply_to_external_id="1001")
    await stack.customer_writes("3010", "and this one", reply_to_external_id="1000")

    async def inbound() -> list[dict]:
        found = [m for m in await stack.timeline(dialog_id) if m["direction"] == "in"]
        return found if len(found) == 3 else []

    first, quoting_ours, quoting_theirs = await stack.eventually(inbound)
    assert quoting_ours["text"] == "I take both"
    assert quoting_ours["reply_to"] == answer.body["message_id"]
    assert quoting_theirs["reply_to"] == first["id"]


async def test_a_receipt_that_overtakes_the_dispatch_is_applied_then(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("3002")
    message_id = (await send(stack, dialog_id, "hi", "c-1")).body["message_id"]
    await stack.wait_handled(await receipt(stack, "3002", "777", DeliveryStatus.READ))
    await dispatched(stack, dialog_id, message_id, provider="777")

    async def read() -> bool:
        [out] = [m for m in await stack.timeline(dialog_id) if m["direction"] == "out"]
        return out["delivery"]["status"] == "read"

    await stack.eventually(read)


async def test_a_failed_dispatch_shows_its_reason(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("3003")
    message_id = (await send(stack, dialog_id, "hi", "c-1")).body["message_id"]
    failure = MessageDispatchFailed(
        dialog_id=dialog_id,
        message_id=uuid.UUID(message_id),
        channel_id="tg-demo",
        reason="Forbidden: bot was blocked by the user",
        attempts=1,
        retryable=False,
    )
    await stack.wait_handled(
        await stack.publish(OUTBOUND, failure, stream_id=str(dialog_id), event_id=None)
    )
    [out] = [m for m in await stack.timeline(dialog_id) if m["direction"] == "out"]
    assert out["delivery"]["status"] == "failed"
    assert out["delivery"]["reason"] == "Forbidden: bot was blocked by the user"


async def test_reply_rules_over_http(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("3004")
    assert (await send(stack, dialog_id, "   ", "c-1")).code == "empty_message"
    too_long = await send(stack, dialog_id, "x" * 4097, "c-2")
    assert (too_long.status, too_long.code) == (422, "text_too_long")
    assert (await send(stack, dialog_id, "x" * 4096, "c-3")).status == 202
    # bob is too late: ann answered first and holds the dialog now (he reads it, read-only).
    late = await send(stack, dialog_id, "me too", "c-4", who="bob")
    assert (late.status, late.code) == (403, "not_allowed")
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "ann")).status == 200
    closed = await send(stack, dialog_id, "hello?", "c-5")
    assert (closed.status, closed.code) == (409, "dialog_closed")


async def test_crm_link_shows_in_the_dialog_and_the_timeline(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("3005")
    customer_id, lead_id = uuid.uuid4(), uuid.uuid4()
    link = DialogLinkedToCrm(dialog_id=dialog_id, customer_id=customer_id, lead_id=lead_id)
    await stack.publish(CRM, link, stream_id=str(customer_id), event_id=None)
    # Redelivered under another event id: still one link, one system message.
    await stack.wait_handled(
        await stack.publish(CRM, link, stream_id=str(customer_id), event_id=None)
    )

    crm = (await stack.dialog(dialog_id, "ann")).body["crm"]
    assert crm == {
        "customer_id": str(customer_id),
        "lead_id": str(lead_id),
        "contact_id": None,
        "company_id": None,
        "deal_id": None,
        "deal_ids": [],
    }
    system = [m for m in await stack.timeline(dialog_id, "ann") if m["direction"] == "system"]
    assert [m["text"] for m in system] == [f"Linked to CRM lead {lead_id}"]
    events = await stack.dialog_events(
        lambda seen: any(isinstance(e.payload, DialogLinkedToCrm) for e in seen)
    )
    mirrored = [e for e in events if isinstance(e.payload, DialogLinkedToCrm)]
    assert [e.stream_id for e in mirrored] == [str(dialog_id)]


async def test_rebuilding_the_read_model_from_the_events_gives_the_same_rows(
    stack: DialogsStack,
) -> None:
    first = await stack.open_dialog("3006")
    message_id = (await send(stack, first, "hi", "c-1")).body["message_id"]
    await stack.wait_handled(await dispatched(stack, first, message_id, provider="1"))
    await stack.post(f"/api/v1/dialogs/{first}/close", "ann")
    second = f"/api/v1/dialogs/{await stack.open_dialog('3007')}"
    # Transfers, participants and a note's mentions are rebuilt too.
    await stack.post(second + "/take", "ann")
    note = await stack.post(second + "/notes", "ann", json={"text": "@bob look", "mentions": []})
    assert note.status == 201
    assert (await stack.post(second + "/join", "sue", json={"operator": "bob"})).status == 200
    assert (await stack.post(second + "/transfer", "sue", json={"to_queue": True})).status == 200
    await stack.open_dialog("3006", "again")  # the conversation's second dialog

    async def snapshot() -> dict[str, list]:
        async with stack.runtime.engine.connect() as conn:
            return {
                table.name: sorted(
                    (await conn.execute(select(table))).all(), key=lambda row: str(row[0])
                )
                for table in (dialogs, messages, conversations)
            }

    live = await snapshot()
    assert len(live["dialogs"]) == 3
    async with stack.runtime.engine.begin() as conn:
        assert await rebuild(conn, stack.runtime.event_store) == 3
    assert await snapshot() == live
