"""Bitrix24's "pin to me": a pinned customer's next dialogs on the line are offered to the
pinning operator first when online with room, else routed as usual."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from openlines.events.catalog import DialogOpened, DialogPinned
from openlines.events.testing import factories
from openlines.kit.testing.waiting import eventually

from .routing_support import Routing, new_id

CUSTOMER = "7001"  # the pinned customer's chat on tg-demo


def opened_for(chat: str, line_id: str = "demo") -> DialogOpened:
    return factories.dialog_opened(new_id(), chat=chat, channel_id=f"tg-{line_id}", line_id=line_id)


def pinned(dialog: DialogOpened, operator_id: str, *, pin: bool = True) -> DialogPinned:
    return DialogPinned(
        dialog_id=dialog.dialog_id,
        operator_id=operator_id,
        pinned=pin,
        line_id=dialog.line_id,
        conversation_key=dialog.conversation_key,
    )


async def pin(
    routing: Routing, dialog: DialogOpened, operator_id: str, *, holds: bool = True
) -> None:
    """Publish the (un)pin and wait until routing keeps it: it is keyed by the dialog, and
    the customer's next dialog by another id, so the two may be consumed in any order."""
    await routing.dialogs.publish(pinned(dialog, operator_id, pin=holds))

    async def kept() -> bool:
        async with routing.runtime.engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT operator_id FROM pins WHERE conversation_key = :key"),
                {"key": dialog.conversation_key},
            )
        return found == (operator_id if holds else None)

    await eventually(kept, what=f"pin of {operator_id} kept={holds}")


async def offer_of(routing: Routing, dialog_id: uuid.UUID, count: int) -> tuple[str, str | None]:
    """(operator, strategy) of the `count`-th command, which must be about `dialog_id`."""
    command = (await routing.commands.commands(count))[count - 1]
    assert command.dialog_id == dialog_id
    return command.operator_id, command.strategy


async def test_the_next_dialog_of_a_pinned_customer_goes_to_the_pinning_operator(
    routing: Routing,
) -> None:
    await routing.presence("ann", "online")
    await routing.presence("bob", "online")
    first = opened_for(CUSTOMER)
    await routing.dialogs.publish(first)
    # Round robin: ann (never assigned, first by id) gets it; bob pins the customer to himself.
    assert await offer_of(routing, first.dialog_id, 1) == ("ann", "round_robin")
    await pin(routing, first, "bob")
    other = opened_for("7002")
    await routing.dialogs.publish(other)
    assert await offer_of(routing, other.dialog_id, 2) == ("bob", "round_robin")

    # The rotation's next is ann now; the customer's new dialog goes to bob all the same.
    again = opened_for(CUSTOMER)
    await routing.dialogs.publish(again)
    assert await offer_of(routing, again.dialog_id, 3) == ("bob", "pinned")
    # Another customer's dialog still follows the rotation.
    stranger = opened_for("7003")
    await routing.dialogs.publish(stranger)
    assert await offer_of(routing, stranger.dialog_id, 4) == ("ann", "round_robin")


async def test_a_pinned_operator_without_room_or_offline_leaves_routing_as_usual(
    routing: Routing,
) -> None:
    await routing.presence("bob", "online")
    first = opened_for(CUSTOMER)
    await routing.dialogs.publish(first)
    assert await offer_of(routing, first.dialog_id, 1) == ("bob", "round_robin")
    await pin(routing, first, "bob")
    filler = opened_for("7002")
    await routing.dialogs.publish(filler)
    assert await offer_of(routing, filler.dialog_id, 2) == ("bob", "round_robin")
    await routing.wait_load("bob", (0, 2, 2))  # full

    await routing.presence("ann", "online")
    full = opened_for(CUSTOMER)
    await routing.dialogs.publish(full)
    assert await offer_of(routing, full.dialog_id, 3) == ("ann", "round_robin")

    await routing.presence("bob", "offline")
    away = opened_for(CUSTOMER)
    await routing.dialogs.publish(away)
    assert await offer_of(routing, away.dialog_id, 4) == ("ann", "round_robin")


async def test_an_unpinned_customer_is_routed_as_usual(routing: Routing) -> None:
    await routing.presence("bob", "online")
    first = opened_for(CUSTOMER)
    await routing.dialogs.publish(first)
    await offer_of(routing, first.dialog_id, 1)
    await pin(routing, first, "bob")
    await pin(routing, first, "bob", holds=False)
    await routing.presence("ann", "online")  # ann: never assigned, so next in rotation

    again = opened_for(CUSTOMER)
    await routing.dialogs.publish(again)
    assert await offer_of(routing, again.dialog_id, 2) == ("ann", "round_robin")
