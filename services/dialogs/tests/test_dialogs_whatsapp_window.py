"""WhatsApp's 24-hour customer-service window and its templates: the rule (pure) and the reply
API (409 window_closed before anything is queued; a template is the way out)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from openlines.dialogs.domain import (
    TemplatesNotSupported,
    TemplateVariables,
    UnknownProviderTemplate,
    WindowClosed,
)
from openlines.dialogs.domain.window import filled_template, require_window_open
from openlines.dialogs.handlers import opened_dialog_id
from openlines.events.catalog import ChannelType, MessageAppended
from openlines.events.envelope import utc_now
from openlines.events.lines import Channel, WhatsApp, WhatsAppTemplate
from openlines.events.testing import factories
from openlines.events.topics import INBOUND

from .dialogs_stack import DialogsStack

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WA_CHANNEL = Channel(
    id="wa-x",
    type="whatsapp",
    whatsapp=WhatsApp(
        phone_number_id="1",
        templates=(WhatsAppTemplate(name="order_update", text="Order {{1}} is {{ 2 }}."),),
    ),
)


def test_the_window_is_24_hours_from_the_customers_last_message() -> None:
    require_window_open(ChannelType.WHATSAPP, NOW - timedelta(hours=23, minutes=59), NOW)
    with pytest.raises(WindowClosed):
        require_window_open(ChannelType.WHATSAPP, NOW - timedelta(hours=24), NOW)
    with pytest.raises(WindowClosed):
        require_window_open(ChannelType.WHATSAPP, None, NOW)  # they never wrote
    # Telegram has no such window.
    require_window_open(ChannelType.TELEGRAM, NOW - timedelta(days=30), NOW)


def test_templates_are_checked_against_the_channel_and_filled_in() -> None:
    text, template = filled_template(WA_CHANNEL, "order_update", "en", ["A1", "shipped"])
    assert text == "Order A1 is shipped."
    assert (template.name, template.language, template.variables) == (
        "order_update",
        "en",
        ("A1", "shipped"),
    )
    with pytest.raises(UnknownProviderTemplate):
        filled_template(WA_CHANNEL, "order_update", "de", ["A1", "shipped"])
    with pytest.raises(UnknownProviderTemplate):
        filled_template(WA_CHANNEL, "nope", "en", [])
    with pytest.raises(TemplateVariables):
        filled_template(WA_CHANNEL, "order_update", "en", ["A1"])
    telegram = Channel(id="tg-x", type="telegram")
    with pytest.raises(TemplatesNotSupported):
        filled_template(telegram, "order_update", "en", ["A1", "shipped"])


async def _wa_dialog(stack: DialogsStack, wa_id: str, *, hours_ago: float) -> uuid.UUID:
    message = factories.message_received(
        wa_id,
        "hi",
        channel_id="wa-demo",
        line_id="demo",
        sent_at=utc_now() - timedelta(hours=hours_ago),
    )
    env = await stack.publish(
        INBOUND,
        message,
        stream_id=message.conversation_key,
        event_id=factories.received_event_id(message),
    )
    dialog_id = opened_dialog_id(env.event_id)
    await stack.eventually(lambda: _exists(stack, dialog_id))
    return dialog_id


async def _exists(stack: DialogsStack, dialog_id: uuid.UUID) -> bool:
    return (await stack.dialog(dialog_id)).status == 200


def _wa_id() -> str:
    return str(uuid.uuid4().int % 10**12)


async def test_free_text_outside_the_window_is_409_and_nothing_is_queued(
    stack: DialogsStack,
) -> None:
    dialog_id = await _wa_dialog(stack, _wa_id(), hours_ago=25)
    path = f"/api/v1/dialogs/{dialog_id}/messages"
    reply = await stack.post(path, "sue", json={"text": "still there?", "client_message_id": "w1"})
    assert (reply.status, reply.code) == (409, "window_closed"), reply.body
    timeline = await stack.timeline(dialog_id)
    assert [m["direction"] for m in timeline if m["direction"] in ("in", "out")] == ["in"]

    bad = [
        ({"name": "nope", "language": "en", "variables": []}, "unknown_template"),
        (
            {"name": "order_update", "language": "en", "variables": ["A1"]},
            "invalid_template_variables",
        ),
    ]
    for template, code in bad:
        reply = await stack.post(
            path, "sue", json={"template": template, "client_message_id": f"w-{code}"}
        )
        assert (reply.status, reply.code) == (422, code), reply.body
    both = {"text": "x", "template": bad[0][0], "client_message_id": "w-both"}
    assert (await stack.post(path, "sue", json=both)).status == 422

    # A template is what may be sent: queued, with its text filled in.
    template = {"name": "order_update", "language": "en", "variables": ["A1", "shipped"]}
    reply = await stack.post(path, "sue", json={"template": template, "client_message_id": "w2"})
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "queued"

    def appended(envs: list) -> bool:
        return any(
            isinstance(e.payload, MessageAppended)
            and str(e.payload.message_id) == reply.body["message_id"]
            for e in envs
        )

    events = await stack.dialog_events(appended)
    (message,) = [
        e.payload
        for e in events
        if isinstance(e.payload, MessageAppended)
        and str(e.payload.message_id) == reply.body["message_id"]
    ]
    assert message.text == "Your order A1 is shipped."
    assert message.template is not None and message.template.variables == ("A1", "shipped")


async def test_free_text_inside_the_window_is_queued(stack: DialogsStack) -> None:
    dialog_id = await _wa_dialog(stack, _wa_id(), hours_ago=23)
    reply = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "sue",
        json={"text": "Yes, here!", "client_message_id": "in-window"},
    )
    assert reply.status == 202, reply.body


async def test_a_template_on_a_telegram_dialog_is_422(stack: DialogsStack) -> None:
    dialog_id = await stack.open_dialog(_wa_id())
    template = {"name": "order_update", "language": "en", "variables": ["A1", "shipped"]}
    reply = await stack.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        "sue",
        json={"template": template, "client_message_id": "tg-template"},
    )
    assert (reply.status, reply.code) == (422, "templates_not_supported"), reply.body
