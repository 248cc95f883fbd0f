"""Catalog v1 (DESIGN section 4). Names are fixed; fields may only grow.

``MessageEdited`` exists twice: ``InboundMessageEdited`` (inbound topic: the customer edited)
and ``DialogMessageEdited`` (dialogs topic: an edit recorded on the dialog). Both have
``TYPE = "MessageEdited"``; see ``openlines.events.topics.payload_class``.
"""

from openlines.events.catalog.commands import AssignDialog, CloseDialog, ReturnToQueue
from openlines.events.catalog.common import (
    AssignedBy,
    Attachment,
    AttachmentKind,
    ChannelType,
    CloseReason,
    Customer,
    DeliveryStatus,
    DialogStatus,
    Direction,
    MessageChange,
    PresenceStatus,
    SlaMetric,
    conversation_key,
)
from openlines.events.catalog.crm import (
    CompanyCreated,
    ContactCreated,
    ContactUpdated,
    CustomerIdentified,
    CustomersMerged,
    DealCreated,
    LeadConverted,
    LeadCreated,
)
from openlines.events.catalog.dialogs import (
    DialogAssigned,
    DialogClosed,
    DialogLinkedToCrm,
    DialogMessageEdited,
    DialogOpened,
    DialogPinned,
    DialogRead,
    DialogRenamed,
    DialogReopened,
    DialogTransferred,
    MessageAppended,
    MessageDeleted,
    MessageDeliveryUpdated,
    ParticipantJoined,
    ParticipantLeft,
)
from openlines.events.catalog.inbound import (
    DeliveryReceiptReceived,
    InboundMessageEdited,
    MessageReceived,
)
from openlines.events.catalog.outbound import MessageDispatched, MessageDispatchFailed
from openlines.events.catalog.routing import (
    DialogQueued,
    OperatorPresenceChanged,
    SlaBreached,
    SlaWarningReached,
)

__all__ = [
    "AssignDialog",
    "AssignedBy",
    "Attachment",
    "AttachmentKind",
    "ChannelType",
    "CloseDialog",
    "CloseReason",
    "CompanyCreated",
    "ContactCreated",
    "ContactUpdated",
    "Customer",
    "CustomerIdentified",
    "CustomersMerged",
    "DealCreated",
    "DeliveryReceiptReceived",
    "DeliveryStatus",
    "DialogAssigned",
    "DialogClosed",
    "DialogLinkedToCrm",
    "DialogMessageEdited",
    "DialogOpened",
    "DialogPinned",
    "DialogQueued",
    "DialogRead",
    "DialogRenamed",
    "DialogReopened",
    "DialogStatus",
    "DialogTransferred",
    "Direction",
    "InboundMessageEdited",
    "LeadConverted",
    "LeadCreated",
    "MessageAppended",
    "MessageChange",
    "MessageDeleted",
    "MessageDeliveryUpdated",
    "MessageDispatchFailed",
    "MessageDispatched",
    "MessageReceived",
    "OperatorPresenceChanged",
    "ParticipantJoined",
    "ParticipantLeft",
    "PresenceStatus",
    "ReturnToQueue",
    "SlaBreached",
    "SlaMetric",
    "SlaWarningReached",
    "conversation_key",
]
