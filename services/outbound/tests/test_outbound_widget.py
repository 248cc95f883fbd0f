"""The widget provider alone: what it accepts, refuses and how it names a reply."""

from __future__ import annotations

import aiohttp
import pytest

from openlines.events.lines import Channel
from openlines.outbound.domain import Accepted, Delete, Edit, Outgoing, Rejected
from openlines.outbound.widget import WidgetProvider

CHANNEL = Channel(id="web-x", type="widget", secret="s", max_text_length=10)
LIMITS = {"timeout": 1.0, "connect_timeout": 1.0}


async def test_a_reply_to_a_visitor_is_accepted_under_a_fresh_provider_id() -> None:
    provider = WidgetProvider()
    async with aiohttp.ClientSession() as http:
        first = await provider.send(http, CHANNEL, Outgoing("v-1", "hi"), **LIMITS)
        second = await provider.send(http, CHANNEL, Outgoing("v-1", "hi"), **LIMITS)
        assert isinstance(first, Accepted) and isinstance(second, Accepted)
        assert first.provider_message_id.startswith("wm-")
        assert first.provider_message_id != second.provider_message_id
        edited = await provider.edit(http, CHANNEL, Edit("v-1", "wm-1", "new"), **LIMITS)
        assert edited == Accepted("wm-1")
        deleted = await provider.delete(http, CHANNEL, Delete("v-1", "wm-1"), **LIMITS)
        assert deleted == Accepted("wm-1")


@pytest.mark.parametrize("message", [Outgoing("not a visitor", "hi"), Outgoing("v-1", "x" * 11)])
async def test_what_no_visitor_can_be_shown_is_rejected(message: Outgoing) -> None:
    async with aiohttp.ClientSession() as http:
        outcome = await WidgetProvider().send(http, CHANNEL, message, **LIMITS)
    assert isinstance(outcome, Rejected)
