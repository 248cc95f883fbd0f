"""The operator stream end to end: real broker and Postgres, real WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import aiohttp

from openlines.events.catalog import DeliveryStatus, DialogQueued
from openlines.events.envelope import Envelope, utc_now
from openlines.events.topics import DIALOGS, ROUTING
from openlines.kit.testing.service import running
from openlines.notify.api import TOKEN_EXPIRED
from openlines.notify.app import build_service
from openlines.notify.settings import NotifySettings

from .notify_support import LINE, Dialog, Publisher, Running, Tab, token

Settings = Callable[..., NotifySettings]

OPENED = ("DialogOpened", "your_line")


async def test_each_operator_gets_what_concerns_them_and_supervisors_get_everything(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    url, publisher = notify
    ann, ann_tab2 = Tab(http, url, "ann", "operator"), Tab(http, url, "ann", "operator")
    bob, sue = Tab(http, url, "bob", "operator"), Tab(http, url, "sue", "supervisor")
    hello = await ann.open()
    await ann_tab2.open(via_header=True)
    await bob.open()
    assert (await sue.open())["sees_all"] is True
    assert hello == {
        "type": "hello",
        "operator_id": "ann",
        "lines": [LINE],
        "sees_all": False,
        "supervised_lines": [],
    }

    d = Dialog()
    opened = d.opened()
    await publisher.publish(
        DIALOGS,
        opened,
        d.assigned("ann"),
        d.message("hello?"),
        d.delivery(DeliveryStatus.READ),
        d.assigned("bob", previous="ann"),  # taken over by a supervisor
        d.message("still there?"),
        d.joined("ann", actor_id="bob"),  # a last event both ann and bob get
    )

    first = await ann.next()
    assert first["type"] == "DialogOpened"
    assert first["dialog_id"] == str(d.id)
    assert Envelope.model_validate(first["event"]) == opened

    assert await ann.take(5) == [
        ("DialogAssigned", "assigned_to_you"),
        ("MessageAppended", "your_dialog"),
        ("MessageDeliveryUpdated", "your_dialog"),
        ("DialogAssigned", "taken_from_you"),
        # not the message written after the dialog was taken from her
        ("ParticipantJoined", "your_dialog"),
    ]
    assert await ann_tab2.take(6) == [
        OPENED,
        ("DialogAssigned", "assigned_to_you"),
        ("MessageAppended", "your_dialog"),
        ("MessageDeliveryUpdated", "your_dialog"),
        ("DialogAssigned", "taken_from_you"),
        ("ParticipantJoined", "your_dialog"),
    ]
    assert await bob.take(5) == [
        OPENED,
        ("DialogAssigned", "your_line"),  # it left the unassigned list
        # not ann's messages while she held it
        ("DialogAssigned", "assigned_to_you"),
        ("MessageAppended", "your_dialog"),
        ("ParticipantJoined", "your_dialog"),
    ]
    everything = [t for t, _ in await sue.take(7)]
    assert everything == [
        "DialogOpened",
        "DialogAssigned",
        "MessageAppended",
        "MessageDeliveryUpdated",
        "DialogAssigned",
        "MessageAppended",
        "ParticipantJoined",
    ]


async def test_a_supervisor_token_limited_to_lines_hears_of_those_lines_only(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    url, publisher = notify
    sue = Tab(http, url, "sue", "supervisor")
    sue_demo = Tab(http, url, "sue", "supervisor", lines=[LINE])
    sue_vip = Tab(http, url, "sue", "supervisor", lines=["vip"])
    sue_none = Tab(http, url, "sue", "supervisor", lines=[])
    assert (await sue.open())["sees_all"] is True
    for tab, lines in ((sue_demo, [LINE]), (sue_vip, ["vip"]), (sue_none, [])):
        hello = await tab.open()
        assert (hello["sees_all"], hello["supervised_lines"]) == (False, lines)

    d = Dialog()
    await publisher.publish(
        DIALOGS, d.opened(), d.assigned("ann"), d.message("my card number is 4242")
    )
    seen = [t for t, _ in await sue.take(3)]
    assert seen == ["DialogOpened", "DialogAssigned", "MessageAppended"]
    # Everything pushed for this dialog is queued (one `publish` offers every session).
    assert [(m["type"], m["reason"]) for m in await sue_demo.until_pong()] == [
        ("DialogOpened", "all_lines"),
        ("DialogAssigned", "all_lines"),
        ("MessageAppended", "all_lines"),
    ]
    assert await sue_vip.until_pong() == []
    assert await sue_none.until_pong() == []


async def test_a_redelivered_event_is_not_pushed_twice(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    url, publisher = notify
    ann = Tab(http, url, "ann", "operator")
    await ann.open()
    d = Dialog()
    opened = d.opened()
    await publisher.publish(DIALOGS, opened)
    assert await ann.take(1) == [OPENED]
    # The broker delivers it again (a producer retry, a rebalance), then the dialog moves on.
    await publisher.publish(DIALOGS, opened, d.assigned("ann"))
    assert await ann.take(1) == [("DialogAssigned", "assigned_to_you")]


async def test_a_queued_dialog_reaches_the_line_and_old_history_is_not_pushed(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    async with running(build_service(make_settings(push_max_age_seconds=60))) as url:
        bob = Tab(http, url, "bob", "operator")
        await bob.open()
        d = Dialog()
        an_hour_ago = utc_now() - timedelta(hours=1)
        stale = Envelope.new(
            DialogQueued(dialog_id=d.id, line_id=LINE, queued_at=an_hour_ago, reason="new"),
            stream_id=str(d.id),
            stream_version=0,
            producer="routing",
        ).model_copy(update={"recorded_at": an_hour_ago})
        queued = Envelope.new(
            DialogQueued(dialog_id=d.id, line_id=LINE, queued_at=utc_now(), reason="returned"),
            stream_id=str(d.id),
            stream_version=0,
            producer="routing",
        )
        await publisher.publish(ROUTING, stale, queued)  # same key: in this order
        pushed = await bob.next()
        assert (pushed["type"], pushed["reason"], pushed["dialog_id"]) == (
            "DialogQueued",
            "your_line",
            str(d.id),
        )
        assert pushed["event"]["event_id"] == str(queued.event_id)


async def test_the_stream_refuses_missing_or_bad_tokens_before_the_upgrade(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    url = notify.url
    stream = f"{url}/api/v1/stream"
    for params, code in (
        ({}, "unauthorized"),
        ({"token": "not-a-jwt"}, "invalid_token"),
        ({"token": token("ann").rsplit(".", 1)[0] + ".forged"}, "invalid_token"),
    ):
        try:
            await http.ws_connect(stream, params=params)
            raise AssertionError("upgrade accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 401
        async with http.get(stream, params=params) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == code
    # A valid token on a plain GET: the endpoint speaks WebSocket only.
    async with http.get(stream, params={"token": token("ann")}) as response:
        assert response.status == 426
        assert (await response.json())["error"]["code"] == "upgrade_required"


async def test_the_stream_ends_when_its_token_expires(
    notify: Running, http: aiohttp.ClientSession
) -> None:
    # The token is checked at the upgrade only: a socket outliving it would keep pushing
    # customer messages to someone who may no longer be allowed to read them.
    url = notify.url
    short = token("ann", ttl_seconds=2)
    ws = await http.ws_connect(f"{url}/api/v1/stream", params={"token": short})
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello"
    async with asyncio.timeout(15):
        message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert (ws.close_code, message.extra) == (TOKEN_EXPIRED, "token expired")
    # A fresh token connects again.
    again = await http.ws_connect(f"{url}/api/v1/stream", params={"token": token("ann")})
    assert (await again.receive_json(timeout=10))["type"] == "hello"
    await again.close()


# A notify of its own: the counters start from nothing only where no earlier test's
# dialogs are waiting.
async def test_counters_are_sent_on_request_and_again_when_they_change(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    async with running(build_service(make_settings())) as url:
        ann, bob = Tab(http, url, "ann", "operator"), Tab(http, url, "bob", "operator")
        await ann.open()
        await bob.open()
        zero = await ann.counters()
        assert (zero["unassigned"], zero["unread"], zero["unread_display"]) == (0, 0, "0")
        await bob.counters()

        d = Dialog()
        await publisher.publish(DIALOGS, d.opened(), d.message("hello?"))
        waiting = await ann.next_counters(unread=1)
        expected = {"unassigned": 1, "unanswered": 1, "unread": 1, "mine_active": 0}
        assert {k: waiting[k] for k in expected} == expected
        assert waiting["unassigned_display"] == "1"
        await bob.next_counters(unread=1)

        # ann reads: her unread goes, bob's stays (his count did not move: no frame for him).
        await publisher.publish(DIALOGS, d.read("ann"))
        await ann.next_counters(unread=0)
        await publisher.publish(DIALOGS, d.assigned("ann"))
        taken = await ann.next_counters(mine_active=1)
        assert (taken["unassigned"], taken["unanswered"], taken["unread"]) == (0, 1, 0)
        gone = await bob.next_counters(unassigned=0)
        assert (gone["unread"], gone["unanswered"]) == (0, 0)  # no longer his to see
