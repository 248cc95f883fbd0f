"""CSAT and classification on the real database and broker: a close sends the rating request,
the customer's button press or digit rates the dialog once, and the operator's rating and
classification through the API (strict bodies, the line's scale and values, the access
policy)."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from openlines.dialogs.domain.feedback import rating_button_data, rating_request_id
from openlines.dialogs.handlers import opened_dialog_id
from openlines.events.catalog import DialogRated, MessageAppended
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import INBOUND

from .dialogs_stack import DialogsStack


async def closed_by_ann(stack: DialogsStack, chat: str) -> uuid.UUID:
    dialog_id = await stack.open_dialog(chat)
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")).status == 200
    closed = await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "ann", json={})
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    return dialog_id


async def press(stack: DialogsStack, chat: str, data: str) -> Envelope:
    pressed = factories.button_pressed(data, chat, channel_id="tg-demo")
    env = await stack.publish(INBOUND, pressed, stream_id=pressed.conversation_key, event_id=None)
    await stack.wait_handled(env)
    return env


def ratings_of(events: list[Envelope], dialog_id: uuid.UUID) -> list[DialogRated]:
    return [
        e.payload
        for e in events
        if isinstance(e.payload, DialogRated) and e.payload.dialog_id == dialog_id
    ]


async def test_a_close_asks_for_a_rating_and_one_button_press_records_it(
    stack: DialogsStack,
) -> None:
    chat = "csat-" + uuid.uuid4().hex[:8]
    dialog_id = await closed_by_ann(stack, chat)
    events = await stack.dialog_events(
        lambda seen: any(isinstance(e.payload, MessageAppended) and e.payload.buttons for e in seen)
    )
    [request] = [
        e.payload
        for e in events
        if isinstance(e.payload, MessageAppended)
        and e.payload.dialog_id == dialog_id
        and e.payload.buttons
    ]
    assert request.message_id == rating_request_id(dialog_id)
    assert [b.text for b in request.buttons] == ["1", "2", "3", "4", "5"]

    # A press from another conversation naming this dialog is a forgery: ignored.
    await press(stack, "someone-else", rating_button_data(dialog_id, 1))
    await press(stack, chat, rating_button_data(dialog_id, 4))
    await press(stack, chat, rating_button_data(dialog_id, 2))  # a second answer: ignored
    dialog = (await stack.dialog(dialog_id, "ann")).body
    assert dialog["ratings"] == {"customer": {"score": 4, "scale": 5}, "operator": None}
    assert dialog["status"] == "closed"
    events = await stack.dialog_events(lambda seen: bool(ratings_of(seen, dialog_id)))
    assert [(r.score, r.by) for r in ratings_of(events, dialog_id)] == [(4, "customer")]
    texts = [item["text"] for item in await stack.timeline(dialog_id, "ann")]
    assert request.text in texts
    assert "The customer rated the dialog 4/5" in texts


async def test_a_digit_answers_the_pending_request_without_a_new_dialog(
    stack: DialogsStack,
) -> None:
    chat = "digit-" + uuid.uuid4().hex[:8]
    dialog_id = await closed_by_ann(stack, chat)
    answer = await stack.customer_writes(chat, " 5 ")
    await stack.wait_handled(answer)
    assert (await stack.dialog(opened_dialog_id(answer.event_id))).status == 404
    dialog = (await stack.dialog(dialog_id)).body
    assert (dialog["status"], dialog["ratings"]["customer"]) == ("closed", {"score": 5, "scale": 5})
    # Rated: the next message, a digit too, is a message as always (a new dialog).
    again = await stack.customer_writes(chat, "3")
    await stack.eventually(lambda: _exists(stack, opened_dialog_id(again.event_id)))
    assert (await stack.dialog(dialog_id)).body["ratings"]["customer"]["score"] == 5


async def test_other_text_to_a_dialog_awaiting_its_rating_opens_a_new_one(
    stack: DialogsStack,
) -> None:
    for text in ("7", "thanks!"):  # out of the 1-5 scale, or not a digit
        chat = "text-" + uuid.uuid4().hex[:8]
        dialog_id = await closed_by_ann(stack, chat)
        env = await stack.customer_writes(chat, text)
        await stack.eventually(partial(_exists, stack, opened_dialog_id(env.event_id)))
        assert (await stack.dialog(dialog_id)).body["ratings"]["customer"] is None


async def _exists(stack: DialogsStack, dialog_id: uuid.UUID) -> bool:
    return (await stack.dialog(dialog_id)).status == 200


async def rate(stack: DialogsStack, dialog_id: uuid.UUID, who: str, body: Any) -> Any:
    return await stack.post(f"/api/v1/dialogs/{dialog_id}/rating", who, json=body)


async def classify(stack: DialogsStack, dialog_id: uuid.UUID, who: str, body: Any) -> Any:
    return await stack.post(f"/api/v1/dialogs/{dialog_id}/classify", who, json=body)


async def test_the_operator_rates_the_customer(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("rate-" + uuid.uuid4().hex[:8])
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")).status == 200
    rated = await rate(stack, dialog_id, "ann", {"score": 3, "comment": "polite"})
    assert rated.status == 200, rated.body
    assert rated.body["ratings"]["operator"] == {
        "score": 3,
        "scale": 5,
        "comment": "polite",
        "by": "ann",
    }
    for body in ({"score": 6}, {"score": 0}):
        refused = await rate(stack, dialog_id, "ann", body)
        assert (refused.status, refused.code) == (422, "score_out_of_scale"), refused.body
    bad_bodies: list[dict[str, Any]] = [{"score": "x"}, {"score": 3, "stars": 3}, {}]
    for bad in bad_bodies:
        assert (await rate(stack, dialog_id, "ann", bad)).code == "invalid_body"
    # bob reads his colleague's dialog but may not write it; carl is not on the line.
    assert (await rate(stack, dialog_id, "bob", {"score": 1})).code == "not_allowed"
    assert (await rate(stack, dialog_id, "carl", {"score": 1})).status == 404
    assert (await rate(stack, uuid.uuid4(), "ann", {"score": 1})).status == 404
    # Also once closed (when it is usually done), and by a supervisor.
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/close", "ann", json={})).status == 200
    again = await rate(stack, dialog_id, "sue", {"score": 4})
    assert again.status == 200, again.body
    assert again.body["ratings"]["operator"]["by"] == "sue"
    texts = [item["text"] for item in await stack.timeline(dialog_id, "ann")]
    assert "ann rated the customer 3/5: polite" in texts
    assert "sue rated the customer 4/5" in texts


async def test_classify_with_the_lines_values(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog("class-" + uuid.uuid4().hex[:8])
    assert (await stack.post(f"/api/v1/dialogs/{dialog_id}/take", "ann")).status == 200
    body = {"type": "complaint", "reasons": ["delivery", "payment"], "status": "resolved"}
    done = await classify(stack, dialog_id, "ann", body)
    assert done.status == 200, done.body
    assert done.body["classification"] == {**body, "by": "ann"}
    for wrong, code in (
        ({**body, "type": "weather"}, "unknown_classification_type"),
        ({**body, "reasons": ["delivery", "mood"]}, "unknown_classification_reason"),
        ({**body, "status": "done"}, "unknown_classification_status"),
    ):
        refused = await classify(stack, dialog_id, "ann", wrong)
        assert (refused.status, refused.code) == (422, code), refused.body
    for wrong_body in ({**body, "colour": "red"}, {"reasons": "delivery"}):
        assert (await classify(stack, dialog_id, "ann", wrong_body)).code == "invalid_body"
    assert (await classify(stack, dialog_id, "bob", body)).code == "not_allowed"
    assert (await classify(stack, dialog_id, "carl", body)).status == 404
    timeline = await stack.timeline(dialog_id, "ann")
    [line] = [item for item in timeline if "classified" in (item["text"] or "")]
    assert line["direction"] == "system" and line["author_id"] == "ann"
    assert (await stack.dialog(dialog_id, "ann")).body["classification"]["status"] == "resolved"
