"""SQL for the write side's own tables (see `tables`). Every function runs inside the caller's
transaction; the handlers and the API call these instead of writing SQL inline.

`record` keeps the tables in step with events just appended to a dialog (the writer calls it
beside the read model's `projection.project`); the others look up and lock. Statements are
built once at module level and executed with a parameter dict: building one per call costs
several times more CPU than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.dialogs.domain import Dialog
from openlines.dialogs.tables import (
    conversations,
    inbound_messages,
    outbound_messages,
    pending_receipts,
)
from openlines.events.catalog import (
    DeliveryReceiptReceived,
    DeliveryStatus,
    DialogOpened,
    Direction,
    MessageAppended,
    MessageDeliveryUpdated,
)
from openlines.events.envelope import Envelope

# DO UPDATE (a no-op change) rather than DO NOTHING: it locks an existing row and returns
# it, so one statement does what INSERT + SELECT FOR UPDATE would.
_new_conversation = insert(conversations).values(conversation_key=bindparam("key"), dialog_id=None)
LOCK_CONVERSATION = _new_conversation.on_conflict_do_update(
    index_elements=[conversations.c.conversation_key],
    set_={"conversation_key": _new_conversation.excluded.conversation_key},
).returning(conversations.c.dialog_id)
_point = insert(conversations)
POINT_CONVERSATION = _point.on_conflict_do_update(
    index_elements=[conversations.c.conversation_key],
    set_={"dialog_id": _point.excluded.dialog_id},
)
INBOUND_DIALOG = select(inbound_messages.c.dialog_id).where(
    inbound_messages.c.conversation_key == bindparam("key"),
    inbound_messages.c.external_message_id == bindparam("external_id"),
)
_outbound = outbound_messages.c
OUTBOUND_BY_PROVIDER_ID = select(_outbound.dialog_id, _outbound.message_id).where(
    outbound_messages.c.conversation_key == bindparam("key"),
    outbound_messages.c.provider_message_id == bindparam("provider_id"),
)
CONVERSATION_OF_MESSAGE = select(outbound_messages.c.conversation_key).where(
    outbound_messages.c.message_id == bindparam("m_id")
)
RECORD_INBOUND = insert(inbound_messages).on_conflict_do_nothing()
RECORD_OUTBOUND = insert(outbound_messages).on_conflict_do_nothing()
RECORD_PROVIDER_ID = (
    update(outbound_messages)
    .where(outbound_messages.c.message_id == bindparam("m_id"))
    .values(provider_message_id=bindparam("provider_id"))
)
PARK_RECEIPT = insert(pending_receipts).on_conflict_do_nothing()
TAKE_PARKED = (
    delete(pending_receipts)
    .where(
        pending_receipts.c.conversation_key == bindparam("key"),
        pending_receipts.c.provider_message_id == bindparam("provider_id"),
    )
    .returning(pending_receipts.c.status, pending_receipts.c.reason)
)


@dataclass(frozen=True)
class OutboundMessage:
    dialog_id: UUID
    message_id: UUID


@dataclass(frozen=True)
class ParkedReceipt:
    status: DeliveryStatus
    reason: str | None


async def lock_conversation(conn: AsyncConnection, key: str) -> UUID | None:
    """Lock the conversation's row (creating it) until commit; return its current dialog.
    Its lock serialises inbound handling per conversation, so concurrent consumers can never
    open two dialogs for one conversation."""
    found = await conn.execute(LOCK_CONVERSATION, {"key": key})
    return found.scalar_one()


async def inbound_dialog(conn: AsyncConnection, key: str, external_message_id: str) -> UUID | None:
    """The dialog holding the customer's message with this provider id, if one does."""
    found = await conn.execute(INBOUND_DIALOG, {"key": key, "external_id": external_message_id})
    return found.scalar_one_or_none()


async def outbound_by_provider_id(
    conn: AsyncConnection, key: str, provider_message_id: str
) -> OutboundMessage | None:
    """Our message that the provider knows by this id (once it was dispatched)."""
    found = await conn.execute(
        OUTBOUND_BY_PROVIDER_ID, {"key": key, "provider_id": provider_message_id}
    )
    row = found.first()
    return OutboundMessage(row.dialog_id, row.message_id) if row else None


async def conversation_of_outbound(conn: AsyncConnection, message_id: UUID) -> str | None:
    return await conn.scalar(CONVERSATION_OF_MESSAGE, {"m_id": message_id})


async def park_receipt(conn: AsyncConnection, event: DeliveryReceiptReceived) -> None:
    """Keep a receipt that overtook the MessageDispatched telling us the provider's id."""
    await conn.execute(
        PARK_RECEIPT,
        {
            "conversation_key": event.conversation_key,
            "provider_message_id": event.provider_message_id,
            "status": event.status,
            "reason": event.reason,
            "received_at": event.at,
        },
    )


async def take_parked_receipts(
    conn: AsyncConnection, key: str, provider_message_id: str
) -> list[ParkedReceipt]:
    """The receipts parked for this provider id, removed: the caller applies them now."""
    found = await conn.execute(TAKE_PARKED, {"key": key, "provider_id": provider_message_id})
    return [ParkedReceipt(DeliveryStatus(status), reason) for status, reason in found.all()]


async def record(conn: AsyncConnection, dialog: Dialog, envelopes: Sequence[Envelope]) -> None:
    """Bring the write side's tables up to date with events just appended to `dialog`."""
    for env in envelopes:
        event = env.payload
        if isinstance(event, DialogOpened):
            await conn.execute(
                POINT_CONVERSATION,
                {"conversation_key": event.conversation_key, "dialog_id": event.dialog_id},
            )
        elif isinstance(event, MessageAppended):
            if event.direction == Direction.IN and event.external_message_id is not None:
                await conn.execute(
                    RECORD_INBOUND,
                    {
                        "conversation_key": event.conversation_key,
                        "external_message_id": event.external_message_id,
                        "dialog_id": event.dialog_id,
                        "message_id": event.message_id,
                    },
                )
            elif event.direction == Direction.OUT:
                await conn.execute(
                    RECORD_OUTBOUND,
                    {
                        "message_id": event.message_id,
                        "dialog_id": event.dialog_id,
                        "conversation_key": event.conversation_key,
                        "provider_message_id": None,
                    },
                )
        elif isinstance(event, MessageDeliveryUpdated) and event.provider_message_id is not None:
            await conn.execute(
                RECORD_PROVIDER_ID,
                {"m_id": event.message_id, "provider_id": event.provider_message_id},
            )
