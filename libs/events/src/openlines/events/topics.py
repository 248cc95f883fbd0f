"""Kafka topics and which payload types each carries: the type registry.

The registry is keyed by (topic, type), because a type name may live on two topics with
different payloads (``MessageEdited``). Lookup rules of ``payload_class``:

- a known topic (or its ``.dlq``) resolves strictly within that topic;
- no topic, or a topic this library does not know (e.g. a mirrored name), resolves by type
  alone, which fails for a name defined differently on several topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openlines.events import catalog as c
from openlines.events.envelope import EventPayload
from openlines.events.errors import UnknownEventType

__all__ = [
    "CRM",
    "DIALOGS",
    "DIALOG_COMMANDS",
    "DLQ_SUFFIX",
    "INBOUND",
    "OUTBOUND",
    "ROUTING",
    "TOPICS",
    "Topic",
    "dlq_topic",
    "payload_class",
    "topics_for",
]

INBOUND = "openlines.inbound.v1"
DIALOGS = "openlines.dialogs.v1"
DIALOG_COMMANDS = "openlines.dialogs.commands.v1"
ROUTING = "openlines.routing.v1"
CRM = "openlines.crm.v1"
OUTBOUND = "openlines.outbound.v1"

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    key_field: str
    """Payload field the Kafka key (= ``stream_id``) comes from; ``a|b`` when it depends on
    the type (routing: ``operator_id`` for presence, ``dialog_id`` otherwise)."""
    event_types: tuple[type[EventPayload], ...]
    description: str
    by_type: dict[str, type[EventPayload]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, type[EventPayload]] = {}
        for kind in self.event_types:
            if kind.TYPE in by_type:
                raise ValueError(f"{self.name}: type {kind.TYPE!r} registered twice")
            by_type[kind.TYPE] = kind
        object.__setattr__(self, "by_type", by_type)


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            INBOUND,
            "conversation_key",
            (
                c.MessageReceived,
                c.InboundMessageEdited,
                c.DeliveryReceiptReceived,
                c.ButtonPressed,
            ),
            "Normalised provider webhooks. Key: conversation key `channel_id:external_chat_id`.",
        ),
        Topic(
            DIALOGS,
            "dialog_id",
            (
                c.DialogOpened,
                c.MessageAppended,
                c.DialogAssigned,
                c.DialogTransferred,
                c.ParticipantJoined,
                c.ParticipantLeft,
                c.DialogRenamed,
                c.DialogPinned,
                c.DialogClosed,
                c.DialogReopened,
                c.MessageDeliveryUpdated,
                c.DialogMessageEdited,
                c.MessageDeleted,
                c.DialogRead,
                c.DialogLinkedToCrm,
                c.DialogRated,
                c.DialogClassified,
            ),
            "Dialog aggregate events, written by the dialogs service only. Key: dialog id.",
        ),
        Topic(
            DIALOG_COMMANDS,
            "dialog_id",
            (c.AssignDialog, c.CloseDialog, c.ReturnToQueue),
            "Commands to the dialogs service (from routing). Key: dialog id.",
        ),
        Topic(
            ROUTING,
            "operator_id|dialog_id",
            (c.OperatorPresenceChanged, c.DialogQueued, c.SlaWarningReached, c.SlaBreached),
            "Presence, queue and SLA events. Key: operator id (presence) or dialog id.",
        ),
        Topic(
            CRM,
            "customer_id",
            (
                c.CustomerIdentified,
                c.LeadCreated,
                c.LeadConverted,
                c.ContactCreated,
                c.CompanyCreated,
                c.DealCreated,
                c.DialogLinkedToCrm,
                c.CustomersMerged,
                c.ContactUpdated,
            ),
            "Customer identities and CRM entities. Key: customer id.",
        ),
        Topic(
            OUTBOUND,
            "dialog_id",
            (c.MessageDispatched, c.MessageDispatchFailed),
            "Results of sending operator messages to providers. Key: dialog id.",
        ),
    )
}


def dlq_topic(name: str) -> str:
    """The dead-letter topic of ``name``."""
    return name + DLQ_SUFFIX


def payload_class(topic: str | None, type: str) -> type[EventPayload]:
    """The payload class of ``type`` on ``topic``; raises ``UnknownEventType``."""
    if topic is not None:
        if topic.endswith(DLQ_SUFFIX):
            topic = topic[: -len(DLQ_SUFFIX)]
        known = TOPICS.get(topic)
        if known is not None:
            kind = known.by_type.get(type)
            if kind is None:
                raise UnknownEventType(f"unknown event type {type!r} on topic {topic!r}")
            return kind
    kind = _UNAMBIGUOUS.get(type)
    if kind is not None:
        return kind
    names = sorted(t.name for t in TOPICS.values() if type in t.by_type)
    if not names:
        raise UnknownEventType(f"unknown event type {type!r}")
    raise UnknownEventType(f"event type {type!r} is ambiguous without a topic: {names}")


def _unambiguous() -> dict[str, type[EventPayload]]:
    """Types that name one class whatever the topic (precomputed: decode is a hot path)."""
    classes: dict[str, set[type[EventPayload]]] = {}
    for t in TOPICS.values():
        for name, kind in t.by_type.items():
            classes.setdefault(name, set()).add(kind)
    return {name: kinds.pop() for name, kinds in classes.items() if len(kinds) == 1}


_UNAMBIGUOUS = _unambiguous()


def topics_for(kind: type[EventPayload]) -> tuple[str, ...]:
    """Topics that carry ``kind`` (``DialogLinkedToCrm`` has two)."""
    return tuple(t.name for t in TOPICS.values() if kind in t.event_types)
