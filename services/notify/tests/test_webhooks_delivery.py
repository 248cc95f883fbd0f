"""Deliveries to a real local receiver: signed, in order per dialog, retried through failures,
timeouts and Retry-After, dead-lettered, redelivered; a dead receiver slows nobody else; 410
unsubscribes; lines and types filter; no private address is called unless allowed."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from sqlalchemy import text

from openlines.events.catalog import CloseReason
from openlines.events.codec import encode
from openlines.events.envelope import Envelope
from openlines.events.testing import factories
from openlines.events.topics import DIALOGS
from openlines.kit.testing.service import running
from openlines.kit.testing.waiting import eventually
from openlines.notify.app import build_service
from openlines.notify.settings import NotifySettings

from .notify_support import Dialog, Publisher
from .test_webhooks_api import ADMIN, call
from .webhook_support import Receiver, Reply

Settings = Callable[..., NotifySettings]
SECRET = "whsec_delivery-tests-secret"
# Fast retries for tests: 0.1-0.2 s, then up to 1 s; a receiver gets 1 s to answer.
FAST = {
    "webhook_allow_private_addresses": True,
    "webhook_timeout_seconds": 1.0,
    "webhook_connect_timeout_seconds": 0.5,
    "webhook_lease_seconds": 5.0,
    "webhook_backoff_base_seconds": 0.2,
    "webhook_backoff_max_seconds": 1.0,
    "webhook_poll_seconds": 0.1,
}


@asynccontextmanager
async def receiving(*receivers: Receiver) -> AsyncIterator[None]:
    for receiver in receivers:
        await receiver.start()
    try:
        yield
    finally:
        for receiver in receivers:
            await receiver.stop()


async def subscribe(
    http: aiohttp.ClientSession, base: str, receiver: Receiver, **fields: Any
) -> dict[str, Any]:
    body = {"url": receiver.url, "event_types": ["*"], "secret": receiver.secret, **fields}
    status, created = await call(http, "POST", f"{base}/api/v1/webhooks", ADMIN, body)
    assert status == 201, created
    return created


def conversation(dialogs: int, messages: int) -> tuple[list[Dialog], list[Envelope]]:
    """Opened, `messages` messages and closed per dialog, the dialogs interleaved."""
    found = [Dialog(chat=str(100 + i)) for i in range(dialogs)]
    streams: list[list[Envelope]] = [
        [
            d.opened(),
            *(d.message(f"{d.chat}-{n}") for n in range(messages)),
            d.event(factories.dialog_closed(d.id, reason=CloseReason.OPERATOR)),
        ]
        for d in found
    ]
    events = [e for step in zip(*streams, strict=True) for e in step]
    return found, events


def figures(name: str, receiver: Receiver, events: int) -> dict[str, int]:
    answered = len(receiver.received)
    figures = {
        "events": events,
        "requests": answered,
        "retries": answered - len(receiver.delivered_ids()) - receiver.duplicates(),
        "duplicates_deduplicated_by_id": receiver.duplicates(),
    }
    print(f"\nwebhook figures [{name}]: {figures}")
    return figures


async def test_signed_in_order_per_dialog_through_failures_timeouts_and_retry_after(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    receiver = Receiver(
        SECRET,
        script=[
            Reply(500),
            Reply(200, hang=2.0),  # handled, but past the sender's timeout: sent again
            Reply(429, retry_after="1"),
            Reply(503),
            Reply(302),
        ],
    )
    _, events = conversation(dialogs=4, messages=4)
    async with receiving(receiver), running(build_service(make_settings(**FAST))) as url:
        await subscribe(http, url, receiver)
        await publisher.publish(DIALOGS, *events)
        await receiver.until_delivered(len(events))

    by_id = {str(e.event_id): e for e in events}
    assert sorted(receiver.delivered_ids()) == sorted(by_id)
    assert all(r.signed for r in receiver.received)
    for r in receiver.received:
        sent = by_id[r.delivery_id]
        assert r.event_type == sent.type
        assert r.body == encode(sent).value  # the Kafka record's bytes
    # In order per dialog: the first successful receipts of each dialog by stream version.
    versions: dict[str, list[int]] = {}
    for delivery_id in receiver.delivered_ids():
        sent = by_id[delivery_id]
        versions.setdefault(sent.stream_id, []).append(sent.stream_version)
    assert all(v == sorted(v) and len(v) == 6 for v in versions.values()), versions
    counted = figures("failures, timeout, 429, recovery", receiver, len(events))
    assert counted["retries"] >= 4 and counted["duplicates_deduplicated_by_id"] >= 1


async def test_a_dead_receiver_slows_neither_other_subscriptions_nor_the_stream(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    dead = Receiver(SECRET, default=Reply(200, hang=30.0))  # takes it, never answers in time
    healthy = Receiver(SECRET)
    settings = make_settings(
        **{**FAST, "webhook_timeout_seconds": 3.0, "webhook_max_in_flight_per_subscription": 2}
    )
    _, events = conversation(dialogs=10, messages=2)
    async with receiving(dead, healthy), running(build_service(settings)) as url:
        await subscribe(http, url, dead)
        await subscribe(http, url, healthy)
        started = time.monotonic()
        await publisher.publish(DIALOGS, *events)
        await healthy.until_delivered(len(events), timeout=30)
        took = time.monotonic() - started
        # Meanwhile the dead receiver held at most its own two slots, and got nothing through.
        assert dead.most_in_flight <= 2
        assert dead.delivered_ids() == [] or len(dead.received) <= 4
    print(f"\nwebhook figures [dead neighbour]: healthy got {len(events)} events in {took:.2f} s")
    # One dead call takes 3 s, two at a time: had the healthy queue shared the dead one's
    # pace, its 40 events would take a minute. (About 2 s here; the bound leaves room for a
    # loaded machine.)
    assert took < 20


async def test_dead_letters_are_listed_and_redelivered(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    receiver = Receiver(SECRET, default=Reply(500))
    settings = make_settings(**{**FAST, "webhook_retry_for_seconds": 2.0})
    dialog = Dialog()
    opened = dialog.opened()
    async with receiving(receiver), running(build_service(settings)) as url:
        hook = await subscribe(http, url, receiver)
        deliveries = f"{url}/api/v1/webhooks/{hook['id']}/deliveries"
        await publisher.publish(DIALOGS, opened)

        async def dead_lettered() -> list[dict[str, Any]] | None:
            _, page = await call(http, "GET", f"{deliveries}?status=failed", ADMIN)
            return page["items"] or None

        [failed] = await eventually(dead_lettered, timeout=30, what="a dead letter")
        assert failed["event_id"] == str(opened.event_id)
        assert failed["event_type"] == "DialogOpened"
        assert failed["last_status"] == 500 and failed["attempts"] >= 2
        assert failed["last_error"].startswith("gave up after")
        tried = len(receiver.received)

        receiver.default = Reply(204)
        status, again = await call(http, "POST", f"{deliveries}/{failed['id']}/redeliver", ADMIN)
        assert status == 202 and again["status"] == "pending", again
        await receiver.until_delivered(1)

        async def delivered() -> list[dict[str, Any]] | None:
            _, page = await call(http, "GET", f"{deliveries}?status=delivered", ADMIN)
            return page["items"] or None

        [done] = await eventually(delivered, timeout=10, what="recorded as delivered")
        assert (done["id"], done["last_status"]) == (failed["id"], 204)
    assert len(receiver.received) == tried + 1
    figures("dead letter, then redelivered", receiver, 1)


async def test_410_disables_the_subscription_until_it_is_enabled_again(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    gone = Receiver(SECRET, script=[Reply(410)])
    marker = Receiver(SECRET)  # the same events: once it has one, the other was recorded
    dialog = Dialog()
    first, second = dialog.opened(), dialog.message("after the 410")
    async with receiving(gone, marker), running(build_service(make_settings(**FAST))) as url:
        hook = await subscribe(http, url, gone)
        await subscribe(http, url, marker)
        webhook = f"{url}/api/v1/webhooks/{hook['id']}"
        await publisher.publish(DIALOGS, first)

        async def disabled() -> dict[str, Any] | None:
            _, body = await call(http, "GET", webhook, ADMIN)
            return body if not body["enabled"] else None

        assert (await eventually(disabled, timeout=30, what="disabled"))[
            "disabled_reason"
        ] == "gone"
        await publisher.publish(DIALOGS, second)
        await marker.until_delivered(2)
        _, page = await call(http, "GET", f"{webhook}/deliveries", ADMIN)
        assert [(d["event_id"], d["status"], d["last_status"]) for d in page["items"]] == [
            (str(first.event_id), "failed", 410)
        ]  # nothing recorded while disabled
        delivery = page["items"][0]["id"]
        status, error = await call(
            http, "POST", f"{webhook}/deliveries/{delivery}/redeliver", ADMIN
        )
        assert (status, error["error"]["code"]) == (409, "subscription_disabled")
        status, enabled = await call(http, "PATCH", webhook, ADMIN, {"enabled": True})
        assert status == 200 and enabled["enabled"] and enabled["disabled_reason"] is None
        assert (await call(http, "POST", f"{webhook}/deliveries/{delivery}/redeliver", ADMIN))[
            0
        ] == 202
        await gone.until_delivered(1)
    assert gone.delivered_ids() == [str(first.event_id)]


async def test_lines_and_event_types_choose_what_a_subscription_gets(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    demo_only, closures = Receiver(SECRET), Receiver(SECRET)
    elsewhere, here = Dialog(chat="7"), Dialog(chat="8")
    closed = factories.dialog_closed
    vip_events = [
        elsewhere.event(factories.dialog_opened(elsewhere.id, chat="7", line_id="vip")),
        elsewhere.message("in vip"),  # no line of its own: the dialog's (vip), not the channel's
        elsewhere.event(closed(elsewhere.id, reason=CloseReason.OPERATOR, line_id="vip")),
    ]
    demo_events = [
        here.opened(),
        here.message("in demo"),
        here.event(closed(here.id, reason=CloseReason.OPERATOR)),
    ]
    async with (
        receiving(demo_only, closures),
        running(build_service(make_settings(**FAST))) as url,
    ):
        await subscribe(http, url, demo_only, lines=["demo"])
        await subscribe(http, url, closures, event_types=["DialogClosed"])
        await publisher.publish(DIALOGS, *vip_events, *demo_events)
        await closures.until_delivered(2)
        await demo_only.until_delivered(3)
    assert demo_only.delivered_ids() == [str(e.event_id) for e in demo_events]
    assert sorted(closures.delivered_ids()) == sorted(
        str(e.event_id) for e in (vip_events[-1], demo_events[-1])
    )


async def test_a_private_address_is_never_called_unless_allowed(
    make_settings: Settings, publisher: Publisher, http: aiohttp.ClientSession
) -> None:
    """A subscription whose host points inside now (DNS rebinding, or saved before the rule):
    the dispatcher checks again at each call and never connects."""
    receiver = Receiver(SECRET)
    settings = make_settings(**{**FAST, "webhook_allow_private_addresses": False})
    runtime = build_service(settings)
    dialog = Dialog()
    async with receiving(receiver), running(runtime):
        for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
            async with runtime.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO webhook_subscriptions (id, url, event_types, lines, secret,"
                        " created_by) VALUES (:id, :url, ARRAY['*'], ARRAY[]::text[], :s, 't')"
                    ),
                    {"id": uuid.uuid4(), "url": url, "s": SECRET},
                )
        await publisher.publish(DIALOGS, dialog.opened())

        async def refused() -> list[str] | None:
            async with runtime.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT last_error FROM webhook_deliveries WHERE last_error IS NOT NULL"
                        )
                    )
                ).all()
            return [r.last_error for r in rows] if len(rows) == 2 else None

        errors = await eventually(refused, timeout=30, what="both deliveries attempted")
        assert all("not allowed" in (e or "") for e in errors), errors
    assert receiver.received == []
