"""The Message-ID of an operator's e-mail reply names its conversation, signed."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from openlines.events.mail import MESSAGE_ID_MAX, conversation_of, reply_message_id

KEYS = {"channel_id": "mail-demo", "domain": "shop.test", "secret": "s"}


@given(chat=st.emails())
def test_the_conversation_is_read_back(chat: str) -> None:
    message_id = reply_message_id(uuid4(), chat_id=chat, **KEYS)
    assert message_id.startswith("<") and message_id.endswith("@shop.test>")
    assert len(message_id) <= MESSAGE_ID_MAX
    if message_id.count(".") >= 3:  # tagged (short enough)
        assert conversation_of(message_id, **KEYS) == chat


def test_a_wrong_tag_channel_domain_or_secret_reads_nothing() -> None:
    message_id = reply_message_id(uuid4(), chat_id="ann@x.test", **KEYS)
    assert conversation_of(message_id, **{**KEYS, "secret": "other"}) is None
    assert conversation_of(message_id, **{**KEYS, "channel_id": "mail-other"}) is None
    assert conversation_of(message_id, **{**KEYS, "domain": "evil.test"}) is None
    assert conversation_of(message_id, **{**KEYS, "secret": ""}) is None
    tampered = message_id.replace(message_id.split(".")[2][:4], "0000", 1)
    assert conversation_of(tampered, **KEYS) is None
    assert conversation_of("<abc@shop.test>", **KEYS) is None


def test_without_secret_or_room_the_message_id_names_no_conversation() -> None:
    plain = reply_message_id(uuid4(), chat_id="ann@x.test", **{**KEYS, "secret": ""})
    assert plain.count(".") == 1  # <hex@shop.test>
    long_chat = "a" * 200 + "@x.test"
    assert reply_message_id(uuid4(), chat_id=long_chat, **KEYS).count(".") == 1
