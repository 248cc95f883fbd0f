"""The website widget's outbound `Provider`: the suite is the widget's provider itself.

There is no third party to call: a reply reaches a visitor through notify's visitor socket,
which shows each reply of the visitor's conversation once outbound has dispatched it
(`MessageDispatched` → dialogs' `MessageDeliveryUpdated(sent)`, which every notify replica
reads; see `openlines.notify.visitors`). So "sending" is deciding that the reply may be shown,
under the same at-most-once job, pacing and outcome events as any provider, and naming it:
the provider message id given here is what the visitor's browser later acknowledges
(`delivered`, `read`) through ingest, which makes those receipts reach the timeline.
An edit or deletion is shown the same way once dispatched.
"""

from __future__ import annotations

import uuid

import aiohttp

from openlines.events.lines import Channel
from openlines.kit.visitor import VISITOR_ID
from openlines.outbound.domain import Accepted, Delete, Edit, Outgoing, ProviderOutcome, Rejected


def provider_message_id() -> str:
    return "wm-" + uuid.uuid4().hex


class WidgetProvider:
    """Checks what a visitor can be shown and names it; no network call (see above)."""

    async def send(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        message: Outgoing,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return deliverable(channel, message.chat_id, message.text) or Accepted(
            provider_message_id()
        )

    async def edit(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        edit: Edit,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return deliverable(channel, edit.chat_id, edit.text) or Accepted(edit.provider_message_id)

    async def delete(
        self,
        http: aiohttp.ClientSession,
        channel: Channel,
        delete: Delete,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> ProviderOutcome:
        return deliverable(channel, delete.chat_id, None) or Accepted(delete.provider_message_id)


def deliverable(channel: Channel, visitor_id: str, text: str | None) -> Rejected | None:
    """Why a visitor cannot be shown this, or None."""
    if not VISITOR_ID.match(visitor_id):
        return Rejected("not a widget visitor id")
    if text is not None and len(text) > channel.max_text_length:
        return Rejected("text too long for the channel")
    return None
