"""The event factories services' tests build their inputs with."""

from __future__ import annotations

import uuid
from typing import Any

from openlines.events.catalog import ChannelType, Direction
from openlines.events.codec import decode, encode
from openlines.events.envelope import Envelope
from openlines.events.testing import (
    DialogStream,
    dialog_assigned,
    dialog_opened,
    envelope,
    message_appended,
    message_received,
    received_event_id,
)


def test_a_provider_message_gets_the_same_event_id_each_time_it_is_built() -> None:
    first = message_received("7", "hi", external_message_id="100")
    again = message_received("7", "hi again", external_message_id="100")
    assert envelope(first).event_id == envelope(again).event_id == received_event_id(first)
    assert envelope(first).stream_id == "tg-demo:7"
    assert message_received("7").external_message_id != message_received("7").external_message_id


def test_the_channel_decides_the_channel_type_and_the_conversation() -> None:
    opened = dialog_opened(chat="9", channel_id="wa-demo", line_id="demo")
    assert opened.channel_type is ChannelType.WHATSAPP
    assert opened.conversation_key == "wa-demo:9"
    assert dialog_opened().channel_type is ChannelType.TELEGRAM


def test_a_dialog_stream_numbers_each_dialogs_events_from_one() -> None:
    stream = DialogStream()
    a, b = uuid.uuid4(), uuid.uuid4()
    envelopes: list[Envelope[Any]] = [
        stream.envelope(dialog_opened(a)),
        stream.envelope(dialog_opened(b)),
        stream.envelope(dialog_assigned(a, "ann")),
        stream.envelope(message_appended(a, "hello", direction=Direction.OUT)),
    ]
    assert [(e.stream_id, e.stream_version) for e in envelopes] == [
        (str(a), 1),
        (str(b), 1),
        (str(a), 2),
        (str(a), 3),
    ]
    assert {e.producer for e in envelopes} == {"dialogs"}


def test_what_the_factories_build_survives_the_codec() -> None:
    env = envelope(message_appended(uuid.uuid4(), "hi"), producer="dialogs")
    record = encode(env)
    assert decode(record.value, record.headers) == env
