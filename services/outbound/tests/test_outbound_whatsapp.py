"""The WhatsApp provider: the Cloud API bodies and answers (pure), and sends through the real
outbound runtime to the sandbox's Graph API."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from openlines.events.catalog import (
    Direction,
    MessageDispatched,
    MessageDispatchFailed,
    MessageTemplate,
)
from openlines.kit.testing.service import running
from openlines.outbound.app import build_service
from openlines.outbound.domain import (
    Accepted,
    Outgoing,
    OutgoingMedia,
    Rejected,
    Transient,
    Unknown,
    classify_whatsapp,
    whatsapp_message,
)
from openlines.outbound.settings import OutboundSettings
from openlines.stack.sandbox import Fault

from .outbound_support import Dialogs, OutboundTopic, Provider, SendOne, reply_event

WA = "wa-test"


def test_text_reply_body_quotes_the_customers_wamid() -> None:
    body = whatsapp_message(Outgoing("4917000", "Hello", reply_to="wamid.in"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4917000",
        "context": {"message_id": "wamid.in"},
        "type": "text",
        "text": {"body": "Hello", "preview_url": False},
    }


def test_template_body_carries_its_variables_as_body_parameters() -> None:
    template = MessageTemplate(name="order_update", language="en", variables=("A1", "shipped"))
    body = whatsapp_message(Outgoing("1", "Your order A1 is shipped.", template=template))
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "A1"}, {"type": "text", "text": "shipped"}],
            }
        ],
    }
    bare = whatsapp_message(
        Outgoing("1", "Hi", template=MessageTemplate(name="hello", language="en_US"))
    )
    assert bare["template"] == {"name": "hello", "language": {"code": "en_US"}}


def test_media_bodies_by_id_or_link_with_caption() -> None:
    image = whatsapp_message(Outgoing("1", "look", media=OutgoingMedia("image", media_id="m1")))
    assert (image["type"], image["image"]) == ("image", {"id": "m1", "caption": "look"})
    document = whatsapp_message(
        Outgoing(
            "1", "", media=OutgoingMedia("document", link="https://x/b.pdf", file_name="b.pdf")
        )
    )
    assert document["document"] == {"link": "https://x/b.pdf", "filename": "b.pdf"}
    audio = whatsapp_message(Outgoing("1", "ignored", media=OutgoingMedia("audio", media_id="a")))
    assert audio["audio"] == {"id": "a"}  # audio takes no caption


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"messages": [{"id": "wamid.1"}]}, Accepted("wamid.1")),
        (200, {"messages": []}, Unknown("unreadable provider answer (HTTP 200)")),
        (200, None, Unknown("unreadable provider answer (HTTP 200)")),
        (
            400,
            {"error": {"code": 100, "message": "(#100) Invalid parameter"}},
            Rejected("whatsapp 100: (#100) Invalid parameter"),
        ),
        (
            400,
            {
                "error": {
                    "code": 131047,
                    "message": "Re-engagement message",
                    "error_data": {"details": "more than 24 hours"},
                }
            },
            Rejected("whatsapp 131047: Re-engagement message (more than 24 hours)"),
        ),
        (
            401,
            {"error": {"code": 190, "message": "Invalid OAuth access token."}},
            Rejected("whatsapp 190: Invalid OAuth access token."),
        ),
        (
            429,
            {"error": {"code": 130429, "message": "Rate limit hit"}},
            Transient("whatsapp 130429: Rate limit hit"),
        ),
        (
            400,
            {"error": {"code": 131056, "message": "pair rate limit"}},
            Transient("whatsapp 131056: pair rate limit"),
        ),
        (
            500,
            {"error": {"code": 131000, "message": "Something went wrong"}},
            Transient("whatsapp 131000: Something went wrong"),
        ),
        (502, "<html>", Transient("HTTP 502")),
    ],
)
def test_graph_answers_are_classified(status: int, body: object, expected: object) -> None:
    assert classify_whatsapp(status, body) == expected


async def test_a_reply_goes_to_the_graph_api_quoting_the_customer(
    make_settings: Callable[..., OutboundSettings],
    provider: Provider,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    dialog_id = uuid.uuid4()
    inbound = reply_event(
        "hi",
        chat="4917000",
        channel=WA,
        direction=Direction.IN,
        dialog_id=dialog_id,
        external_message_id="wamid.in.1",
    )
    reply = reply_event(
        "Hello!",
        chat="4917000",
        channel=WA,
        dialog_id=dialog_id,
        reply_to=inbound.payload.message_id,
    )
    async with running(build_service(make_settings())):
        await dialogs.publish(inbound, reply)
        outcome = await outbound_topic.outcome_of(reply.payload.message_id)

    assert isinstance(outcome.payload, MessageDispatched), outcome.payload
    (sent,) = provider.server.sandbox.mailbox(WA).sent
    assert outcome.payload.provider_message_id == sent.wamid
    assert sent.body is not None
    assert sent.body["to"] == "4917000"
    assert sent.body["context"] == {"message_id": "wamid.in.1"}
    assert sent.body["text"]["body"] == "Hello!"


async def test_a_template_reply_is_sent_as_the_template(
    send_one: SendOne, provider: Provider
) -> None:
    template = MessageTemplate(name="order_update", language="en", variables=("A1", "shipped"))
    envelope = reply_event("Your order A1 is shipped.", chat="4917001", channel=WA)
    envelope = envelope.model_copy(
        update={"payload": envelope.payload.model_copy(update={"template": template})}
    )
    outcome = await send_one(envelope)
    assert isinstance(outcome.payload, MessageDispatched), outcome.payload
    (sent,) = provider.server.sandbox.mailbox(WA).sent
    assert sent.type == "template"
    assert sent.body is not None and sent.body["template"]["name"] == "order_update"
    assert sent.text == "order_update | A1 | shipped"


async def test_a_refused_message_fails_with_the_graph_error(
    send_one: SendOne, provider: Provider
) -> None:
    provider.server.sandbox.mailbox(WA).faults.append(Fault(400, 1, 0.0))
    envelope = reply_event("nope", chat="4917002", channel=WA)
    outcome = await send_one(envelope)
    assert isinstance(outcome.payload, MessageDispatchFailed), outcome.payload
    assert outcome.payload.reason == "whatsapp 100: (#100) Invalid parameter"
    assert outcome.payload.attempts == 1
    assert provider.server.sandbox.mailbox(WA).sent == []
