"""openlines event contracts: envelope, catalog v1, topics, codec and published schemas;
and the lines configuration (`openlines.events.lines`), which pure domains read.

Depends on pydantic (and PyYAML, for the lines file) alone, so that any system can install it
to read openlines topics::

    from openlines.events import decode, DIALOGS
    env = decode(record.value, record.headers, topic=record.topic)
"""

from openlines.events import catalog
from openlines.events.codec import (
    KafkaRecord,
    decode,
    encode,
    from_json_dict,
    register_upcaster,
    to_json_dict,
)
from openlines.events.envelope import (
    Envelope,
    EventPayload,
    UtcDatetime,
    deterministic_event_id,
    envelope_model,
)
from openlines.events.errors import (
    DecodeError,
    InvalidPayload,
    MalformedRecord,
    UnknownEventType,
    UnsupportedSchemaVersion,
)
from openlines.events.topics import (
    CRM,
    DIALOG_COMMANDS,
    DIALOGS,
    INBOUND,
    OUTBOUND,
    ROUTING,
    TOPICS,
    Topic,
    dlq_topic,
    payload_class,
    topics_for,
)

__all__ = [
    "CRM",
    "DIALOGS",
    "DIALOG_COMMANDS",
    "INBOUND",
    "OUTBOUND",
    "ROUTING",
    "TOPICS",
    "DecodeError",
    "Envelope",
    "EventPayload",
    "InvalidPayload",
    "KafkaRecord",
    "MalformedRecord",
    "Topic",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "UtcDatetime",
    "catalog",
    "decode",
    "deterministic_event_id",
    "dlq_topic",
    "encode",
    "envelope_model",
    "from_json_dict",
    "payload_class",
    "register_upcaster",
    "to_json_dict",
    "topics_for",
]
