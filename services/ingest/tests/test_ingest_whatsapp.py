"""The WhatsApp adapter alone (pure: no broker, no HTTP), and a fuzz of its parser."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlines.events.catalog import (
    AttachmentKind,
    DeliveryReceiptReceived,
    DeliveryStatus,
    MessageReceived,
)
from openlines.events.lines import Channel, Line, WhatsApp
from openlines.ingest.domain import Accepted, Batch, Ignored, InvalidUpdate
from openlines.ingest.whatsapp import WhatsAppAdapter, signature

CHANNEL = Channel(
    id="wa-x",
    type="whatsapp",
    secret="app-secret",
    token="t",
    api_base="http://x",
    whatsapp=WhatsApp(phone_number_id="100", verify_token="vt"),
)
LINE = Line(id="line-x", channels=(CHANNEL,))
ADAPTER = WhatsAppAdapter()


def _value(**fields: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001", "phone_number_id": "100"},
        **fields,
    }


def _body(*values: dict[str, Any]) -> dict[str, Any]:
    changes = [{"field": "messages", "value": v} for v in values]
    return {"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": changes}]}


def _message(kind: str, wamid: str = "wamid.1", **fields: Any) -> dict[str, Any]:
    return {"from": "4917000", "id": wamid, "timestamp": "1700000000", "type": kind, **fields}


def _outcomes(body: dict[str, Any]) -> tuple[Accepted | Ignored, ...]:
    outcome = ADAPTER.normalise(body, LINE, CHANNEL)
    assert isinstance(outcome, Batch)
    return outcome.outcomes


def _received(message: dict[str, Any], **value: Any) -> MessageReceived:
    (outcome,) = _outcomes(_body(_value(messages=[message], **value)))
    assert isinstance(outcome, Accepted) and isinstance(outcome.payload, MessageReceived)
    return outcome.payload


def test_signature_is_the_hmac_of_the_raw_body_with_the_app_secret() -> None:
    body = b'{"object": "whatsapp_business_account"}'
    good = {"X-Hub-Signature-256": signature("app-secret", body)}
    assert ADAPTER.verify(CHANNEL, good, body)
    assert not ADAPTER.verify(CHANNEL, good, body + b" ")
    assert not ADAPTER.verify(CHANNEL, {"X-Hub-Signature-256": signature("other", body)}, body)
    assert not ADAPTER.verify(CHANNEL, {}, body)
    assert not ADAPTER.verify(CHANNEL, {"X-Hub-Signature-256": "sha256=\udcff"}, body)
    unsigned = CHANNEL.model_copy(update={"secret": ""})
    assert not ADAPTER.verify(unsigned, {"X-Hub-Signature-256": signature("", body)}, body)


def test_handshake_echoes_the_challenge_only_for_the_right_token() -> None:
    hub = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert ADAPTER.handshake(CHANNEL, hub) == "1158201444"
    assert ADAPTER.handshake(CHANNEL, {**hub, "hub.verify_token": "nope"}) is None
    assert ADAPTER.handshake(CHANNEL, {**hub, "hub.mode": "unsubscribe"}) is None
    no_token = CHANNEL.model_copy(update={"whatsapp": WhatsApp(phone_number_id="100")})
    assert ADAPTER.handshake(no_token, {**hub, "hub.verify_token": ""}) is None


def test_text_message_with_contact_name_and_reply_context() -> None:
    msg = _received(
        _message("text", text={"body": "Hi there"}, context={"from": "100", "id": "wamid.0"}),
        contacts=[{"profile": {"name": "Kerry Fisher"}, "wa_id": "4917000"}],
    )
    assert (msg.channel_id, msg.channel_type, msg.line_id) == ("wa-x", "whatsapp", "line-x")
    assert msg.conversation_key == "wa-x:4917000"
    assert (msg.external_chat_id, msg.external_user_id) == ("4917000", "4917000")
    assert msg.external_message_id == "wamid.1"
    assert msg.customer.name == "Kerry Fisher" and msg.customer.phone == "+4917000"
    assert msg.text == "Hi there"
    assert msg.reply_to_external_id == "wamid.0"
    assert msg.sent_at.timestamp() == 1_700_000_000


def test_media_messages_become_attachments_with_their_caption() -> None:
    image = _received(
        _message("image", image={"id": "m1", "mime_type": "image/jpeg", "caption": "look"})
    )
    assert [(a.kind, a.file_id, a.mime_type) for a in image.attachments] == [
        (AttachmentKind.PHOTO, "m1", "image/jpeg")
    ]
    assert image.text == "look"
    document = _received(
        _message("document", document={"id": "m2", "filename": "bill.pdf", "mime_type": "x/y"})
    )
    assert document.attachments[0].kind is AttachmentKind.DOCUMENT
    assert document.attachments[0].file_name == "bill.pdf" and document.text is None
    voice = _received(_message("audio", audio={"id": "m3", "voice": True}))
    assert voice.attachments[0].kind is AttachmentKind.VOICE
    audio = _received(_message("audio", audio={"id": "m4"}))
    assert audio.attachments[0].kind is AttachmentKind.AUDIO
    video = _received(_message("video", video={"id": "m5"}))
    assert video.attachments[0].kind is AttachmentKind.VIDEO


def test_location_and_choices_become_text() -> None:
    place = _received(
        _message("location", location={"latitude": 52.5, "longitude": 13.4, "name": "Office"})
    )
    assert place.text == "📍 Office (52.500000,13.400000)"
    button = _received(
        _message(
            "interactive",
            interactive={"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
        )
    )
    assert button.text == "Yes"
    listed = _received(
        _message(
            "interactive",
            interactive={"type": "list_reply", "list_reply": {"id": "r2", "title": "Room 2"}},
        )
    )
    assert listed.text == "Room 2"
    template_button = _received(_message("button", button={"text": "Stop", "payload": "STOP"}))
    assert template_button.text == "Stop"


def test_statuses_become_receipts_and_sent_is_ignored() -> None:
    def status(name: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": "wamid.out",
            "status": name,
            "timestamp": "1700000100",
            "recipient_id": "4917000",
            **fields,
        }

    errors = [{"code": 131026, "title": "Message undeliverable"}]
    outcomes = _outcomes(
        _body(
            _value(
                statuses=[
                    status("sent"),
                    status("delivered"),
                    status("read"),
                    status("failed", errors=errors),
                ]
            )
        )
    )
    assert outcomes[0] == Ignored("status_sent")
    receipts = [o.payload for o in outcomes[1:] if isinstance(o, Accepted)]
    assert all(isinstance(r, DeliveryReceiptReceived) for r in receipts)
    assert [(r.status, r.reason) for r in receipts if isinstance(r, DeliveryReceiptReceived)] == [
        (DeliveryStatus.DELIVERED, None),
        (DeliveryStatus.READ, None),
        (DeliveryStatus.FAILED, "131026: Message undeliverable"),
    ]
    first = receipts[0]
    assert isinstance(first, DeliveryReceiptReceived)
    assert first.provider_message_id == "wamid.out"
    assert first.conversation_key == "wa-x:4917000"


def test_every_entry_change_message_and_status_is_processed() -> None:
    body = _body(
        _value(messages=[_message("text", "wamid.a", text={"body": "a"})]),
        _value(
            messages=[
                _message("text", "wamid.b", text={"body": "b"}),
                _message("reaction", "wamid.r", reaction={"emoji": "👍"}),
            ]
        ),
    )
    body["entry"].append(
        {
            "id": "waba",
            "changes": [
                {
                    "field": "messages",
                    "value": _value(
                        statuses=[
                            {
                                "id": "wamid.o",
                                "status": "read",
                                "timestamp": "1",
                                "recipient_id": "1",
                            }
                        ]
                    ),
                },
                {"field": "account_update", "value": {}},
            ],
        }
    )
    outcomes = _outcomes(body)
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    assert len(accepted) == 3
    assert [o.kind for o in outcomes if isinstance(o, Ignored)] == [
        "message_reaction",
        "field_account_update",
    ]


def test_event_ids_are_deterministic_from_the_wamid() -> None:
    def event_id(wamid: str, channel: Channel = CHANNEL) -> str:
        body = _body(_value(messages=[_message("text", wamid, text={"body": "x"})]))
        outcome = ADAPTER.normalise(body, LINE, channel)
        assert isinstance(outcome, Batch)
        (accepted,) = outcome.accepted
        return str(accepted.event_id)

    other = CHANNEL.model_copy(update={"id": "wa-y"})
    assert event_id("wamid.1") == event_id("wamid.1")  # Meta's retry: the same event
    assert len({event_id("wamid.1"), event_id("wamid.2"), event_id("wamid.1", other)}) == 3


def test_another_phone_numbers_updates_are_ignored() -> None:
    value = _value(messages=[_message("text", text={"body": "x"})])
    value["metadata"]["phone_number_id"] = "999"
    assert _outcomes(_body(value)) == (Ignored("other_phone_number"),)


def test_not_a_whatsapp_notification_is_invalid() -> None:
    invalid: tuple[object, ...] = (
        [],
        {"object": "page", "entry": [{}]},
        {"object": "whatsapp_business_account", "entry": []},
        _body(_value(messages=[_message("text", "wamid.\x1f", text={"body": "x"})])),
        _body(_value(messages=[{**_message("text", text={"body": "x"}), "from": "+49"}])),
        _body(_value(messages=[{**_message("text", text={"body": "x"}), "timestamp": "soon"}])),
    )
    for data in invalid:
        try:
            ADAPTER.normalise(data, LINE, CHANNEL)
        except InvalidUpdate:
            continue
        raise AssertionError(f"accepted {data!r}")


def test_overlong_text_is_cut_not_refused() -> None:
    msg = _received(_message("text", text={"body": "x" * 10_000}))
    assert msg.text is not None and len(msg.text) == 4096


# -- fuzz: whatever the JSON, the parser answers or raises InvalidUpdate, nothing else --------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _near_valid() -> st.SearchStrategy[dict[str, Any]]:
    """Real shapes with any field replaced by any JSON: where parser bugs hide."""
    message = st.fixed_dictionaries(
        {
            "from": st.sampled_from(["4917000", "", "+1", "1" * 40]) | _json,
            "id": st.text(max_size=300) | _json,
            "timestamp": st.sampled_from(["1", "99999999999", "-1", "1e3"]) | _json,
            "type": st.sampled_from(["text", "image", "location", "interactive"]) | _json,
        },
        optional={
            "text": st.fixed_dictionaries({"body": st.text()}) | _json,
            "image": st.fixed_dictionaries({"id": st.text(max_size=5)}) | _json,
            "location": st.fixed_dictionaries({"latitude": st.floats(), "longitude": st.floats()})
            | _json,
            "interactive": _json,
            "context": _json,
        },
    )
    status = st.fixed_dictionaries(
        {
            "id": st.text(max_size=10) | _json,
            "status": st.sampled_from(["sent", "delivered", "read", "failed"]) | _json,
            "timestamp": st.sampled_from(["1", "9" * 12]) | _json,
            "recipient_id": st.sampled_from(["1", "x"]) | _json,
        },
        optional={"errors": st.lists(_json, max_size=2)},
    )
    value = st.fixed_dictionaries(
        {},
        optional={
            "metadata": st.fixed_dictionaries({"phone_number_id": st.sampled_from(["100", "1"])})
            | _json,
            "contacts": st.lists(_json, max_size=2),
            "messages": st.lists(message, max_size=3) | _json,
            "statuses": st.lists(status, max_size=3) | _json,
        },
    )
    change = st.fixed_dictionaries(
        {"field": st.sampled_from(["messages", "other"]) | _json, "value": value | _json}
    )
    entry = st.fixed_dictionaries({"changes": st.lists(change, max_size=3) | _json})
    return st.fixed_dictionaries(
        {
            "object": st.sampled_from(["whatsapp_business_account"]) | _json,
            "entry": st.lists(entry, max_size=3) | _json,
        }
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _near_valid()))
def test_fuzz_the_parser_raises_nothing_but_invalid_update(data: Any) -> None:
    # What read_json gives the adapter: JSON as parsed (no NaN, keys are strings).
    try:
        data = json.loads(json.dumps(data, allow_nan=False))
    except ValueError:
        return
    try:
        outcome = ADAPTER.normalise(data, LINE, CHANNEL)
    except InvalidUpdate:
        return
    assert isinstance(outcome, Batch | Ignored)
    for accepted in outcome.accepted if isinstance(outcome, Batch) else ():
        # Every event is a legal catalog event (it would go on the broker as is).
        type(accepted.payload).model_validate(accepted.payload.model_dump())
