"""The registry is exactly catalog v1 of DESIGN section 4: that table is the spec."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from openlines.events import catalog as c
from openlines.events import topics
from openlines.events.envelope import EventPayload

# Copied from the DESIGN section 4 table; change only together with the design.
EXPECTED = {
    "openlines.inbound.v1": {
        "MessageReceived",
        "MessageEdited",
        "DeliveryReceiptReceived",
        "ButtonPressed",
    },
    "openlines.dialogs.v1": {
        "DialogOpened",
        "MessageAppended",
        "DialogAssigned",
        "DialogTransferred",
        "ParticipantJoined",
        "ParticipantLeft",
        "DialogRenamed",
        "DialogPinned",
        "DialogClosed",
        "DialogReopened",
        "MessageDeliveryUpdated",
        "MessageEdited",
        "MessageDeleted",
        "DialogRead",
        "DialogLinkedToCrm",
        "DialogRated",
        "DialogClassified",
    },
    "openlines.dialogs.commands.v1": {"AssignDialog", "CloseDialog", "ReturnToQueue"},
    "openlines.routing.v1": {
        "OperatorPresenceChanged",
        "DialogQueued",
        "SlaWarningReached",
        "SlaBreached",
    },
    "openlines.crm.v1": {
        "CustomerIdentified",
        "LeadCreated",
        "LeadConverted",
        "ContactCreated",
        "CompanyCreated",
        "DealCreated",
        "DialogLinkedToCrm",
        "CustomersMerged",
        "ContactUpdated",
    },
    "openlines.outbound.v1": {"MessageDispatched", "MessageDispatchFailed"},
}

ALL = sorted(
    {kind for topic in topics.TOPICS.values() for kind in topic.event_types},
    key=lambda k: k.__name__,
)


def test_registry_is_exactly_the_design_catalog() -> None:
    assert {name: set(t.by_type) for name, t in topics.TOPICS.items()} == EXPECTED


def test_topic_constants() -> None:
    assert list(EXPECTED) == [
        topics.INBOUND,
        topics.DIALOGS,
        topics.DIALOG_COMMANDS,
        topics.ROUTING,
        topics.CRM,
        topics.OUTBOUND,
    ]
    assert topics.dlq_topic(topics.DIALOGS) == "openlines.dialogs.v1.dlq"


def test_message_edited_is_two_classes_and_linked_to_crm_is_one() -> None:
    assert topics.payload_class(topics.INBOUND, "MessageEdited") is c.InboundMessageEdited
    assert topics.payload_class(topics.DIALOGS, "MessageEdited") is c.DialogMessageEdited
    assert topics.payload_class(topics.DIALOGS, "DialogLinkedToCrm") is c.DialogLinkedToCrm
    assert topics.payload_class(topics.CRM, "DialogLinkedToCrm") is c.DialogLinkedToCrm
    assert topics.payload_class(None, "DialogLinkedToCrm") is c.DialogLinkedToCrm
    assert topics.topics_for(c.DialogLinkedToCrm) == (topics.DIALOGS, topics.CRM)
    assert topics.topics_for(c.MessageReceived) == (topics.INBOUND,)


def test_every_catalog_class_is_exported_from_catalog() -> None:
    for kind in ALL:
        assert getattr(c, kind.__name__) is kind


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.__name__)
def test_payload_classes_are_frozen_and_tolerant(kind: type[EventPayload]) -> None:
    assert kind.model_config.get("frozen") is True
    assert kind.model_config.get("extra") == "ignore"
    assert kind.SCHEMA_VERSION >= 1


@pytest.mark.parametrize("topic", list(topics.TOPICS.values()), ids=lambda t: t.name)
def test_key_field_is_on_every_payload_of_the_topic(topic: topics.Topic) -> None:
    candidates = topic.key_field.split("|")
    for kind in topic.event_types:
        assert any(f in kind.model_fields for f in candidates), (kind, topic.key_field)


def test_value_objects_are_frozen() -> None:
    value_objects: list[type[BaseModel]] = [c.Attachment, c.Customer]
    for model in value_objects:
        assert model.model_config.get("frozen") is True


def test_closed_sets() -> None:
    assert {d.value for d in c.Direction} == {"in", "out", "note", "system"}
    assert {s.value for s in c.DeliveryStatus} == {"queued", "sent", "delivered", "read", "failed"}
    assert {r.value for r in c.CloseReason} == {
        "operator",
        "auto_inactive",
        "auto_unassigned",
        "spam",
    }
    assert {a.value for a in c.AssignedBy} == {"routing", "operator", "supervisor"}
    assert {p.value for p in c.PresenceStatus} == {"online", "away", "offline"}
    assert {t.value for t in c.ChannelType} == {"telegram", "whatsapp", "viber", "widget", "email"}
    assert {k.value for k in c.AttachmentKind} == {
        "photo",
        "document",
        "audio",
        "video",
        "voice",
        "sticker",
        "other",
    }
    assert c.conversation_key("tg-sales", "42") == "tg-sales:42"
