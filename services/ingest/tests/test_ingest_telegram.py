"""The Telegram adapter alone (pure: no broker, no HTTP)."""

from __future__ import annotations

import pytest

from openlines.events.catalog import AttachmentKind, ButtonPressed, MessageReceived
from openlines.events.lines import Channel, Line
from openlines.ingest.domain import Accepted, Ignored, InvalidUpdate
from openlines.ingest.telegram import TelegramAdapter

CHANNEL = Channel(id="tg-x", type="telegram", secret="s", token="1:t", api_base="http://x")
LINE = Line(id="line-x", channels=(CHANNEL,))
ADAPTER = TelegramAdapter()


def _message(**fields: object) -> dict[str, object]:
    return {"message_id": 10, "date": 1, "chat": {"id": 42, "type": "private"}, **fields}


def _received(message: dict[str, object]) -> MessageReceived:
    outcome = ADAPTER.normalise({"update_id": 1, "message": message}, LINE, CHANNEL)
    assert isinstance(outcome, Accepted)
    assert isinstance(outcome.payload, MessageReceived)
    return outcome.payload


def test_event_id_depends_on_channel_chat_and_message_only() -> None:
    def event_id(update_id: int, chat: int, message_id: int, channel: Channel = CHANNEL) -> str:
        message = _message(message_id=message_id, chat={"id": chat}, text="x")
        outcome = ADAPTER.normalise({"update_id": update_id, "message": message}, LINE, channel)
        assert isinstance(outcome, Accepted)
        return str(outcome.event_id)

    other_channel = CHANNEL.model_copy(update={"id": "tg-y"})
    assert event_id(1, 42, 10) == event_id(2, 42, 10)  # a redelivery with a new update_id
    assert len({event_id(1, 42, 10), event_id(1, 43, 10), event_id(1, 42, 11)}) == 3
    assert event_id(1, 42, 10) != event_id(1, 42, 10, other_channel)


def test_media_kinds_map_to_attachments() -> None:
    file = {"file_id": "f", "file_unique_id": "u", "duration": 3}
    msg = _received(
        _message(voice=file, audio={**file, "file_id": "a"}, video_note={**file, "file_id": "n"})
    )
    assert [(a.kind, a.file_id) for a in msg.attachments] == [
        (AttachmentKind.AUDIO, "a"),
        (AttachmentKind.VOICE, "f"),
        (AttachmentKind.VIDEO, "n"),
    ]
    assert msg.attachments[0].duration_seconds == 3


def test_animation_is_not_duplicated_by_its_document_twin() -> None:
    gif = {"file_id": "g", "file_unique_id": "u", "mime_type": "video/mp4"}
    msg = _received(_message(animation=gif, document=gif))
    assert [(a.kind, a.file_id) for a in msg.attachments] == [(AttachmentKind.VIDEO, "g")]


def test_sender_falls_back_to_username_then_id() -> None:
    assert _received(_message(text="x", **{"from": {"id": 7, "username": "u7"}})).customer.name == (
        "u7"
    )
    assert _received(_message(text="x", **{"from": {"id": 7}})).customer.name == "7"
    # A group message without `from` (anonymous admin): the chat speaks.
    anonymous = _received(_message(text="x", chat={"id": -100, "type": "group", "title": "Team"}))
    assert (anonymous.external_user_id, anonymous.customer.name) == ("-100", "Team")


def _press(**fields: object) -> dict[str, object]:
    query = {
        "id": "4382",
        "from": {"id": 7, "is_bot": False, "first_name": "Ann", "username": "ann_c"},
        "message": _message(text="Rate us?", reply_markup={"inline_keyboard": []}),
        "chat_instance": "-11",
        "data": "csat:d:5",
        **fields,
    }
    return {"update_id": 3, "callback_query": query}


def test_a_button_press_becomes_button_pressed_and_is_answered_in_the_webhook() -> None:
    outcome = ADAPTER.normalise(_press(), LINE, CHANNEL)
    assert isinstance(outcome, Accepted)
    pressed = outcome.payload
    assert isinstance(pressed, ButtonPressed)
    assert (pressed.conversation_key, pressed.external_chat_id) == ("tg-x:42", "42")
    assert (pressed.external_user_id, pressed.customer.username) == ("7", "ann_c")
    assert (pressed.data, pressed.press_id, pressed.message_external_id) == (
        "csat:d:5",
        "4382",
        "10",
    )
    assert pressed.line_id == "line-x"
    assert outcome.webhook_reply == {"method": "answerCallbackQuery", "callback_query_id": "4382"}
    # Telegram's retry of the same press is the same event; another press is another.
    again = ADAPTER.normalise({**_press(), "update_id": 4}, LINE, CHANNEL)
    other = ADAPTER.normalise(_press(id="4383"), LINE, CHANNEL)
    assert isinstance(again, Accepted) and isinstance(other, Accepted)
    assert again.event_id == outcome.event_id != other.event_id


def test_a_press_without_our_message_or_data_is_ignored() -> None:
    assert ADAPTER.normalise(_press(message=None), LINE, CHANNEL) == Ignored("callback_query")
    assert ADAPTER.normalise(_press(data=None), LINE, CHANNEL) == Ignored("callback_query")
    too_long = ADAPTER.normalise(_press(data="x" * 300), LINE, CHANNEL)
    assert isinstance(too_long, Accepted)
    assert isinstance(too_long.payload, ButtonPressed) and len(too_long.payload.data) == 64


def test_other_update_kinds_are_ignored() -> None:
    for kind in ("channel_post", "chat_join_request", "poll", "message_reaction"):
        outcome = ADAPTER.normalise({"update_id": 1, kind: {}}, LINE, CHANNEL)
        assert outcome == Ignored(kind)


@pytest.mark.parametrize(
    "data",
    [
        "text",
        None,
        {"message": _message(text="x")},  # no update_id
        {"update_id": "one", "message": _message(text="x")},
        {"update_id": 1, "message": _message(text="x", date=-5)},
        {"update_id": 1, "message": _message(photo=[{"file_id": ""}])},
        {"update_id": 1, "message": _message(document={"file_id": "d", "file_size": -1})},
    ],
)
def test_what_is_not_an_update_is_invalid(data: object) -> None:
    with pytest.raises(InvalidUpdate):
        ADAPTER.normalise(data, LINE, CHANNEL)


def test_secret_is_compared_exactly() -> None:
    header = "X-Telegram-Bot-Api-Secret-Token"
    assert ADAPTER.verify(CHANNEL, {header: "s"}, b"")
    assert not ADAPTER.verify(CHANNEL, {header: "s "}, b"")
    assert not ADAPTER.verify(CHANNEL, {header: "ś"}, b"")
    # aiohttp hands undecodable header bytes over surrogate-escaped: unequal, not an error.
    assert not ADAPTER.verify(
        CHANNEL, {header: b"\xff\xfe".decode("utf-8", "surrogateescape")}, b""
    )
    assert not ADAPTER.verify(CHANNEL, {}, b"")
    assert not ADAPTER.verify(CHANNEL.model_copy(update={"secret": ""}), {header: ""}, b"")
