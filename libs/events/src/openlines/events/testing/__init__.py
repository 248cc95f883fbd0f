"""Test data for openlines events: factories for the catalog's events with sensible defaults
(`factories`) and hypothesis strategies for every payload (`strategies`, needs ``hypothesis``).

Service tests play their neighbours with the factories: `message_received(chat="42")` is what
ingest publishes for a Telegram message, `DialogStream().envelope(dialog_opened(...))` what
the dialogs relay would emit, with consecutive stream versions.
"""

from openlines.events.testing.factories import (
    DialogStream,
    channel_type_of,
    delivery_receipt_received,
    dialog_assigned,
    dialog_closed,
    dialog_opened,
    envelope,
    message_appended,
    message_delivery_updated,
    message_dispatch_failed,
    message_dispatched,
    message_received,
    participant_joined,
    received_event_id,
)
from openlines.events.testing.strategies import envelopes, models, payloads, strategy_for

__all__ = [
    "DialogStream",
    "channel_type_of",
    "delivery_receipt_received",
    "dialog_assigned",
    "dialog_closed",
    "dialog_opened",
    "envelope",
    "envelopes",
    "message_appended",
    "message_delivery_updated",
    "message_dispatch_failed",
    "message_dispatched",
    "message_received",
    "models",
    "participant_joined",
    "payloads",
    "received_event_id",
    "strategy_for",
]
