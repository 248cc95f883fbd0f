"""CSAT and classification across the real processes (Leeloo's): closing a dialog sends the
customer the rating request with Telegram inline buttons through the sandbox provider; the
customer's press comes back as a callback_query webhook and records `DialogRated` once; the
operator rates the customer and classifies the dialog through the gateway.

On a line of its own (`csat`, operators cs1 and cs2, manual routing; conftest)."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from openlines.events.codec import decode
from openlines.events.topics import DIALOGS
from openlines.kit.testing.kafka import read_topic

from .conftest import CSAT_CHANNEL, CSAT_SECRET, Stack
from .steps import customer_says, dialog_of_chat, eventually, get_json, json_if_ok, post_json

pytestmark = pytest.mark.infra  # runs servers or processes of its own


async def test_close_rate_by_button_once_then_operator_rating_and_classify(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    base, cs1 = stack.url, stack.auth("cs1")
    chat = random.randint(10**6, 10**7)
    await customer_says(
        http,
        base,
        chat,
        "Rita Rater",
        "Where is my order?",
        channel=CSAT_CHANNEL,
        secret=CSAT_SECRET,
    )
    dialog = await dialog_of_chat(http, base, stack.auth("sue", "supervisor"), chat)
    dialog_id = dialog["id"]
    dialogs_url = f"{base}/api/v1/dialogs/{dialog_id}"
    status, taken = await post_json(http, f"{dialogs_url}/take", cs1)
    assert status == 200, taken
    status, closed = await post_json(http, f"{dialogs_url}/close", cs1)
    assert status == 200 and closed["status"] == "closed", closed

    # The sandbox got the question with the scale as an inline keyboard.
    async def rating_request() -> dict[str, Any] | None:
        body = await json_if_ok(http, f"{base}/sandbox/{CSAT_CHANNEL}/sent", {})
        found = [
            m
            for m in (body or {}).get("sent", [])
            if str(m["chat_id"]) == str(chat) and m.get("reply_markup")
        ]
        return found[-1] if found else None

    request = await eventually(rating_request, "the rating request at the sandbox")
    assert request["text"] == "How did we do?"
    [row] = request["reply_markup"]["inline_keyboard"]
    assert [key["text"] for key in row] == ["1", "2", "3", "4", "5"]
    assert all(key["callback_data"] == f"csat:{dialog_id}:{key['text']}" for key in row)

    # The customer presses 4: Telegram's callback_query through ingest, answered at once.
    press_url = f"{base}/sandbox/{CSAT_CHANNEL}/press"
    status, pressed = await post_json(http, press_url, {}, {"chat_id": chat, "text": "4"})
    assert status == 200 and pressed["ok"], pressed
    assert pressed["webhook"]["answer"]["method"] == "answerCallbackQuery"

    async def customer_rating() -> dict[str, Any] | None:
        body = await json_if_ok(http, dialogs_url, cs1)
        return (body or {}).get("ratings", {}).get("customer")

    assert await eventually(customer_rating, "the customer's rating") == {"score": 4, "scale": 5}

    # A second press is ignored. It is handled before the customer's next message (one
    # conversation, one partition), which opens a new dialog: the marker that it was.
    status, _ = await post_json(http, press_url, {}, {"chat_id": chat, "text": "2"})
    assert status == 200
    await customer_says(
        http, base, chat, "Rita Rater", "One more thing", channel=CSAT_CHANNEL, secret=CSAT_SECRET
    )
    await dialog_of_chat(
        http,
        base,
        stack.auth("sue", "supervisor"),
        chat,
        where=lambda d: d["id"] != dialog_id,
        what="the customer's next dialog",
    )
    assert await customer_rating() == {"score": 4, "scale": 5}

    # On the stream: exactly one DialogRated of this dialog, by the customer.
    bootstrap = str(stack.state["kafka"]["bootstrap"])  # type: ignore[index]
    records = await read_topic(bootstrap, DIALOGS, lambda rs: bool(_rated(rs, dialog_id)))
    assert [(r["score"], r["by"]) for r in _rated(records, dialog_id)] == [(4, "customer")]

    # The operator rates the customer and classifies the dialog through the gateway.
    status, rated = await post_json(
        http, f"{dialogs_url}/rating", cs1, {"score": 5, "comment": "kind and patient"}
    )
    assert status == 200, rated
    assert rated["ratings"]["operator"] == {
        "score": 5,
        "scale": 5,
        "comment": "kind and patient",
        "by": "cs1",
    }
    status, refused = await post_json(http, f"{dialogs_url}/rating", cs1, {"score": 9})
    assert (status, refused["error"]["code"]) == (422, "score_out_of_scale")
    status, refused = await post_json(
        http, f"{dialogs_url}/rating", stack.auth("cs2"), {"score": 1}
    )
    assert (status, refused["error"]["code"]) == (403, "not_allowed")

    body = {"type": "question", "reasons": ["delivery"], "status": "resolved"}
    status, classified = await post_json(http, f"{dialogs_url}/classify", cs1, body)
    assert status == 200 and classified["classification"] == {**body, "by": "cs1"}, classified
    status, refused = await post_json(
        http, f"{dialogs_url}/classify", cs1, {**body, "reasons": ["weather"]}
    )
    assert (status, refused["error"]["code"]) == (422, "unknown_classification_reason")

    status, timeline = await get_json(http, f"{dialogs_url}/timeline", cs1)
    assert status == 200
    system = [i["text"] for i in timeline["items"] if i["direction"] == "system"]
    assert "The customer rated the dialog 4/5" in system
    assert "cs1 rated the customer 5/5: kind and patient" in system
    assert "cs1 classified the dialog: type question; reasons delivery; status resolved" in system
    [asked] = [i for i in timeline["items"] if i["text"] == "How did we do?"]
    assert asked["direction"] == "out" and asked["author_id"] is None


def _rated(records: list[Any], dialog_id: str) -> list[dict[str, Any]]:
    found = []
    for record in records:
        if dict(record.headers).get("type") != b"DialogRated":
            continue
        payload = decode(record.value, record.headers, topic=DIALOGS).payload
        if str(payload.dialog_id) == dialog_id:
            found.append(payload.model_dump(mode="json"))
    return found
