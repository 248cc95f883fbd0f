"""Composition root: the projection consumer, the session hub and the stream endpoint; the
webhook fan-out consumer, its dispatcher and `/api/v1/webhooks`."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.envelope import Envelope
from openlines.events.lines import LinesConfig, load_lines
from openlines.events.topics import DIALOGS, ROUTING, TOPICS
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription
from openlines.notify.api import StreamApi
from openlines.notify.counters import LiveCounters
from openlines.notify.frames import ClientFrames, Throttle
from openlines.notify.hub import SessionHub
from openlines.notify.projection import StreamProjection
from openlines.notify.settings import NotifySettings
from openlines.notify.visitors import VisitorHub, VisitorProjection, VisitorSocketApi
from openlines.notify.webhooks.addresses import ReceiverAddresses
from openlines.notify.webhooks.api import WebhooksApi
from openlines.notify.webhooks.dispatcher import Dispatcher
from openlines.notify.webhooks.domain import WEBHOOK_EVENT_CLASSES, WEBHOOK_TOPICS
from openlines.notify.webhooks.fanout import WebhookFanout

MIGRATIONS = Path(__file__).parent / "migrations"


def build_service(settings: NotifySettings | None = None) -> ServiceRuntime:
    settings = settings or NotifySettings()
    lines = load_lines(settings.lines_file)
    hub = SessionHub(queue_size=settings.session_queue_size)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, runs_relay=False)
    counters = LiveCounters(lambda: runtime.engine)
    projection = StreamProjection(hub, settings.push_max_age_seconds, counters)
    visitor_hub = VisitorHub()
    visitor_projection = VisitorProjection(visitor_hub, lines, settings.push_max_age_seconds)

    async def handle(conn: AsyncConnection, envelope: Envelope) -> None:
        await projection.handle(conn, envelope)
        await visitor_projection.handle(conn, envelope)

    async def after_commit(applied: list[Envelope]) -> None:
        await projection.after_commit(applied)
        await visitor_projection.after_commit(applied)

    events: Subscription = Subscription.configured(
        settings.consumer_group, [DIALOGS, ROUTING], settings, after_commit=after_commit
    )
    # Every event of both topics may concern a session (its view or its audience).
    events.on(*TOPICS[DIALOGS].event_types, *TOPICS[ROUTING].event_types)(handle)
    runtime.subscribe(events)
    frames = ClientFrames(
        hub, lambda: runtime.engine, Throttle(settings.typing_throttle_seconds), counters
    )
    runtime.routes(StreamApi(hub, lines, settings.ws_heartbeat_seconds, frames).install)
    install_webhooks(runtime, settings, lines)
    # The website visitors' sockets (visitors.py says why they live here).
    visitor_api = VisitorSocketApi(
        visitor_hub,
        hub,
        visitor_projection,
        lambda: runtime.engine,
        settings.ws_heartbeat_seconds,
        settings.typing_throttle_seconds,
    )
    frames.typing_hooks.append(visitor_api.operator_typing)
    runtime.routes(visitor_api.install)
    return runtime


def install_webhooks(runtime: ServiceRuntime, settings: NotifySettings, lines: LinesConfig) -> None:
    dispatcher = Dispatcher(runtime, settings)
    fanout = WebhookFanout(lines, settings.webhook_retry_for_seconds, dispatcher.wake)
    deliveries: Subscription = Subscription.configured(
        settings.webhooks_group, WEBHOOK_TOPICS, settings, after_commit=fanout.after_commit
    )
    deliveries.on(*WEBHOOK_EVENT_CLASSES)(fanout.handle)
    runtime.subscribe(deliveries)
    runtime.run_in_background(dispatcher.run)
    runtime.health.live["webhooks"] = lambda: time.monotonic() - dispatcher.last_round_at < 60
    api = WebhooksApi(
        lambda: runtime.engine,
        lines,
        ReceiverAddresses(settings.webhook_allow_private_addresses),
        settings.webhook_retry_for_seconds,
        dispatcher.wake,
    )
    runtime.routes(api.install)
