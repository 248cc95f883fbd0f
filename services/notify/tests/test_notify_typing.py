"""Typing on the stream, end to end: real WebSockets, broker and Postgres. A colleague who
sees the dialog hears of it, an operator who may not see it does not, the sender's own tabs
do not; repeated frames are throttled; bad frames get an error frame and close nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from openlines.events.topics import DIALOGS
from openlines.kit.testing.service import running
from openlines.notify.app import build_service
from openlines.notify.settings import NotifySettings

from .notify_support import Dialog, Publisher, Tab

Settings = Callable[..., NotifySettings]


def typing(dialog_id: uuid.UUID) -> dict[str, Any]:
    return {"type": "typing", "dialog_id": str(dialog_id)}


async def send(tab: Tab, frame: Any) -> None:
    assert tab.ws is not None
    await tab.ws.send_json(frame)


async def test_typing_reaches_the_colleagues_who_see_the_dialog_and_nobody_else(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    # A long interval: the throttle, not the machine's speed, decides what is dropped.
    async with running(build_service(make_settings(typing_throttle_seconds=600))) as url:
        ann, ann_tab2 = Tab(http, url, "ann", "operator"), Tab(http, url, "ann", "operator")
        bob, sue = Tab(http, url, "bob", "operator"), Tab(http, url, "sue", "supervisor")
        for tab in (ann, ann_tab2, bob, sue):
            await tab.open()
        held, queued = Dialog("1"), Dialog("2")
        await publisher.publish(DIALOGS, held.opened(), held.assigned("ann"), queued.opened())
        # Pushed after commit: from here notify's view of both dialogs is current. (The two
        # dialogs may sit on different partitions: their events arrive in either order.)
        assert sorted(t for t, _ in await sue.take(3)) == [
            "DialogAssigned",
            "DialogOpened",
            "DialogOpened",
        ]
        for tab in (ann, ann_tab2, bob):
            await tab.until_pong()

        # ann types in her dialog, twice (throttled), then in the queued one.
        await send(ann, typing(held.id))
        await send(ann, typing(held.id))
        await send(ann, typing(queued.id))
        expected_held = {"type": "typing", "dialog_id": str(held.id), "operator_id": "ann"}
        expected_queued = {**expected_held, "dialog_id": str(queued.id)}
        assert [await sue.next(), await sue.next()] == [expected_held, expected_queued]
        # bob works on demo: he sees the queued dialog, not ann's; her own tabs hear nothing.
        assert await bob.until_pong() == [expected_queued]
        assert await ann_tab2.until_pong() == []
        assert await ann.until_pong() == []
        assert await sue.until_pong() == []

        # bob reads ann's dialog (his line) but may not write in it: an error frame for him,
        # nothing for the others.
        await send(bob, typing(held.id))
        error = await bob.next()
        assert (error["type"], error["error"]["code"]) == ("error", "not_allowed")
        # sue (a supervisor, not on the dialog) typing reaches ann's tabs.
        await send(sue, typing(held.id))
        from_sue = {**expected_held, "operator_id": "sue"}
        assert await ann.next() == from_sue
        assert await ann_tab2.next() == from_sue
        assert await bob.until_pong() == []


async def test_bad_frames_get_an_error_frame_and_close_nothing(
    make_settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with running(build_service(make_settings())) as url:
        ann, bob = Tab(http, url, "ann", "operator"), Tab(http, url, "bob", "operator")
        await ann.open()
        await bob.open()
        assert ann.ws is not None
        await ann.ws.send_str("not json")
        await ann.ws.send_str('{"type": "dance"}')
        await ann.ws.send_json({"type": "typing", "dialog_id": "nope"})
        await ann.ws.send_bytes(b"\x00\x01")
        await send(ann, typing(uuid.uuid4()))  # no such dialog
        codes = [(await ann.next())["error"]["code"] for _ in range(5)]
        assert codes == ["bad_frame", "bad_frame", "bad_frame", "bad_frame", "not_found"]
        # Both sessions still answer.
        assert await ann.until_pong() == []
        assert await bob.until_pong() == []
