"""Reading: per-operator unread, read-all, counters, the list's new filters and sorts, search
and the customer's history, over the real broker and Postgres."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from openlines.dialogs.handlers import opened_dialog_id
from openlines.dialogs.writer import DialogWriter
from openlines.events.catalog import Customer, DialogPinned
from openlines.events.envelope import utc_now
from openlines.events.testing import factories
from openlines.events.topics import INBOUND

from .dialogs_stack import CHANNEL, DialogsStack

LIST = "/api/v1/dialogs"


async def _ids(stack: DialogsStack, who: str, **params: str) -> list[str]:
    page = await stack.get(LIST, who, **params)
    assert page.status == 200, page.body
    return [d["id"] for d in page.body["items"]]


async def _unread(stack: DialogsStack, dialog_id: uuid.UUID, who: str) -> int:
    return int((await stack.dialog(dialog_id, who)).body["unread_count"])


async def _counters(stack: DialogsStack, who: str) -> dict[str, Any]:
    reply = await stack.get("/api/v1/counters", who)
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def _writes(stack: DialogsStack, chat: str, text: str, **customer: Any) -> uuid.UUID:
    """A customer writes (with contact details, or at a past `sent_at`); the dialog's id."""
    sent_at = customer.pop("sent_at", None)
    message = factories.message_received(chat, text, channel_id=CHANNEL, sent_at=sent_at)
    if customer:
        details = Customer(name=customer.pop("name", f"Customer {chat}"), external_id=chat)
        message = message.model_copy(update={"customer": details.model_copy(update=customer)})
    env = await stack.publish(
        INBOUND,
        message,
        stream_id=message.conversation_key,
        event_id=factories.received_event_id(message),
    )
    await stack.wait_handled(env)
    return opened_dialog_id(env.event_id)


async def test_unread_is_per_operator_and_reading_or_replying_reads(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("5001", "one")
    await stack.wait_handled(await stack.customer_writes("5001", "two"))
    assert [await _unread(stack, dialog_id, w) for w in ("ann", "bob", "sue")] == [2, 2, 2]

    read = await stack.post(f"{LIST}/{dialog_id}/read", "ann")
    assert (read.status, read.body["unread_count"]) == (200, 0)
    # Only ann's count moved.
    assert [await _unread(stack, dialog_id, w) for w in ("ann", "bob", "sue")] == [0, 2, 2]
    assert (await stack.post(f"{LIST}/{dialog_id}/read", "ann")).status == 200  # idempotent

    # bob answers (and so takes it): he has read what he answered; a new message is unread.
    reply = await stack.post(
        f"{LIST}/{dialog_id}/messages", "bob", json={"text": "hi", "client_message_id": "1"}
    )
    assert reply.status == 202, reply.body
    assert await _unread(stack, dialog_id, "bob") == 0
    await stack.wait_handled(await stack.customer_writes("5001", "three"))
    assert [await _unread(stack, dialog_id, w) for w in ("bob", "sue")] == [1, 3]
    # Reading needs only that one may read: ann lost the dialog to bob, but works on its line,
    # so she still reads it (read-only) and marks it read for herself; zed works on no line.
    assert (await stack.post(f"{LIST}/{dialog_id}/read", "ann")).status == 200
    assert (await stack.post(f"{LIST}/{dialog_id}/read", "zed")).code == "not_found"


async def test_read_all_reads_what_the_caller_may_list_and_counters_follow(
    stack: DialogsStack,
) -> None:
    opened = [await stack.open_dialog(f"510{i}", "hi") for i in range(3)]
    before = await _counters(stack, "bob")
    assert {k: before[k] for k in ("unassigned", "unanswered", "unread", "mine_active")} == {
        "unassigned": 3,
        "unanswered": 3,
        "unread": 3,
        "mine_active": 0,
    }
    assert before["unread_display"] == "3"
    assert sorted(await _ids(stack, "bob", unread="true")) == sorted(map(str, opened))

    done = await stack.post(f"{LIST}/read-all", "bob")
    assert (done.status, done.body) == (200, {"read": 3})
    assert (await _counters(stack, "bob"))["unread"] == 0
    assert await _ids(stack, "bob", unread="true") == []
    assert sorted(await _ids(stack, "bob", unread="false")) == sorted(map(str, opened))
    assert (await _counters(stack, "ann"))["unread"] == 3  # ann's are still unread
    assert (await stack.post(f"{LIST}/read-all", "bob")).body == {"read": 0}

    # ann takes one: it leaves bob's counters, and is ann's active one.
    assert (await stack.post(f"{LIST}/{opened[0]}/take", "ann")).status == 200
    ann = await _counters(stack, "ann")
    assert (ann["unassigned"], ann["mine_active"], ann["unanswered"]) == (2, 1, 3)
    assert (await _counters(stack, "bob"))["unassigned"] == 2
    assert await _ids(stack, "ann", tab="active", participant="me") == [str(opened[0])]
    assert await _ids(stack, "bob", participant="me") == []


async def test_filters_unanswered_pinned_and_sla(stack: DialogsStack) -> None:
    now = utc_now()
    breach = await _writes(stack, "5201", "waiting long", sent_at=now - timedelta(minutes=10))
    warning = await _writes(stack, "5202", "waiting a bit", sent_at=now - timedelta(minutes=3))
    fresh = await _writes(stack, "5203", "just wrote")
    answered = await stack.open_dialog("5204", "hello")
    reply = await stack.post(
        f"{LIST}/{answered}/messages", "ann", json={"text": "hi", "client_message_id": "1"}
    )
    assert reply.status == 202

    waiting = {str(d) for d in (breach, warning, fresh)}
    assert set(await _ids(stack, "sue", unanswered="true")) == waiting
    assert await _ids(stack, "sue", unanswered="false") == [str(answered)]
    assert await _ids(stack, "sue", sla="breach") == [str(breach)]
    assert await _ids(stack, "sue", sla="warning") == [str(warning)]
    # The filter and the JSON's sla.state say the same.
    for state, dialog_id in (("breach", breach), ("warning", warning), ("ok", fresh)):
        assert (await stack.dialog(dialog_id)).body["sla"]["state"] == state

    async with stack.runtime.engine.begin() as conn:
        await DialogWriter(stack.runtime.event_store).execute(
            conn, fresh, lambda d: [DialogPinned(dialog_id=d.id, operator_id="sue", pinned=True)]
        )
    assert await _ids(stack, "sue", pinned="true") == [str(fresh)]
    assert await _ids(stack, "ann", pinned="true") == []  # pins are per operator

    # Longest waiting first; not waiting last.
    assert await _ids(stack, "sue", sort="waiting") == [
        str(d) for d in (breach, warning, fresh, answered)
    ]


async def test_every_sort_and_order_pages_through_every_dialog_once(stack: DialogsStack) -> None:
    now = utc_now()
    for i in range(5):
        # Waiting since out of opening order, and one not waiting at all.
        await _writes(stack, f"530{i}", f"m{i}", sent_at=now - timedelta(minutes=(i * 7) % 5))
    answered = await stack.open_dialog("5305", "hello")
    await stack.post(
        f"{LIST}/{answered}/messages", "sue", json={"text": "hi", "client_message_id": "1"}
    )
    for sort, order in itertools.product(("updated", "waiting", "created"), ("asc", "desc")):
        whole = (await stack.get(LIST, "sue", sort=sort, order=order)).body["items"]
        assert len(whole) == 6
        paged: list[str] = []
        cursor = None
        while True:
            params = {"sort": sort, "order": order, "limit": "2"}
            page = await stack.get(LIST, "sue", **params, **({"cursor": cursor} if cursor else {}))
            assert page.status == 200, page.body
            paged += [d["id"] for d in page.body["items"]]
            cursor = page.body["next_cursor"]
            if cursor is None:
                break
        assert paged == [d["id"] for d in whole], (sort, order)
        field = {"updated": "updated_at", "created": "created_at"}.get(sort)
        if field is not None:
            keys = [(d[field], d["id"]) for d in whole]
            assert keys == sorted(keys, reverse=order == "desc"), (sort, order)
        # A cursor is for its own sort and order only.
        first = await stack.get(LIST, "sue", sort=sort, order=order, limit="2")
        other = "asc" if order == "desc" else "desc"
        wrong = await stack.get(
            LIST, "sue", sort=sort, order=other, cursor=first.body["next_cursor"]
        )
        assert wrong.code == "bad_cursor"


async def test_search_finds_older_messages_and_the_customers_details(stack: DialogsStack) -> None:
    dialog_id = await _writes(
        stack,
        "5401",
        "my parcel number is XR-99812",
        name="Olena Kovalenko",
        username="olena_k",
        phone="+380501234567",
        email="olena@example.com",
    )
    other = await stack.open_dialog("5402", "unrelated question")
    for n in range(3):  # the matching message is no longer the last one
        await stack.wait_handled(await stack.customer_writes("5401", f"later message {n}"))
    me = [str(dialog_id)]
    for q in ("XR-99812", "parcel", "parc", "PARCEL NUM", "Olena", "koval", "olena_k",
              "+38050", "380501", "olena@example.com", "5401", "olena parcel"):  # fmt: skip
        assert await _ids(stack, "sue", q=q) == me, q
    assert await _ids(stack, "sue", q="unrelated") == [str(other)]
    assert await _ids(stack, "sue", q="parcel unrelated") == []  # every word must match
    assert await _ids(stack, "sue", q="%%%") == []
    assert await _ids(stack, "zed", q="parcel") == []  # search stays within what one may see
    # The JSON shows the contact details it matched on.
    customer = (await stack.dialog(dialog_id)).body["customer"]
    assert (customer["username"], customer["phone"], customer["email"]) == (
        "olena_k",
        "+380501234567",
        "olena@example.com",
    )


async def test_history_lists_earlier_dialogs_readable_from_the_current_one(
    stack: DialogsStack,
) -> None:
    first = await stack.open_dialog("5501", "first visit")
    await stack.post(
        f"{LIST}/{first}/messages", "bob", json={"text": "hello", "client_message_id": "1"}
    )
    assert (await stack.post(f"{LIST}/{first}/close", "bob")).status == 200
    second = await stack.open_dialog("5501", "back again")
    assert second != first
    assert (await stack.post(f"{LIST}/{second}/take", "ann")).status == 200

    history = await stack.get(f"{LIST}/{second}/history", "ann")
    assert history.status == 200, history.body
    [item] = history.body["items"]
    # The customer's, bob's, and the rating request the demo line sends on close.
    assert (item["id"], item["status"], item["channel_id"], item["message_count"]) == (
        str(first),
        "closed",
        CHANNEL,
        3,
    )
    assert item["opened_at"] and item["closed_at"]
    # ann reads bob's closed dialog of her line (read-only), and through the history too.
    direct = await stack.dialog(first, "ann")
    assert (direct.status, direct.body["can_write"]) == (200, False)
    timeline = await stack.get(f"{LIST}/{second}/history/{first}/timeline", "ann")
    assert timeline.status == 200
    texts = [m["text"] for m in timeline.body["items"] if m["direction"] in ("in", "out")]
    # ... and the rating request the demo line sends on close.
    assert texts[:2] == ["first visit", "hello"] and len(texts) == 3
    assert texts[2].startswith("How would you rate our help?")
    # Not for whoever may not read the current dialog, nor for a dialog outside the history.
    assert (await stack.get(f"{LIST}/{second}/history", "zed")).code == "not_found"
    outsider = await stack.open_dialog("5502", "someone else")
    path = f"{LIST}/{second}/history/{outsider}/timeline"
    assert (await stack.get(path, "ann")).code == "not_found"
    assert (await stack.get(f"{LIST}/{first}/history", "bob")).body["items"] == []


async def test_an_edited_message_is_found_by_its_new_words_only(stack: DialogsStack) -> None:
    first = await stack.customer_writes("5601", "my colour is turquoise", external_message_id="7")
    await stack.wait_handled(first)
    dialog_id = opened_dialog_id(first.event_id)
    assert await _ids(stack, "sue", q="turquoise") == [str(dialog_id)]
    edit = factories.message_edited("7", "my colour is magenta", chat="5601")
    await stack.wait_handled(
        await stack.publish(INBOUND, edit, stream_id=edit.conversation_key, event_id=None)
    )
    assert await _ids(stack, "sue", q="turquoise") == []
    assert await _ids(stack, "sue", q="magenta") == [str(dialog_id)]
    # Later messages still fold into the recomputed document.
    await stack.wait_handled(await stack.customer_writes("5601", "and ochre"))
    assert await _ids(stack, "sue", q="magenta ochre") == [str(dialog_id)]
