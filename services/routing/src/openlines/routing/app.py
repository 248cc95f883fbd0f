"""Composition root: settings, lines config, the router, its consumer, timer and routes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from openlines.events.lines import load_lines
from openlines.events.topics import DIALOG_COMMANDS, DIALOGS, ROUTING
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription
from openlines.kit.timers import Clock, wall_clock
from openlines.routing import api, store
from openlines.routing.router import RESERVATION_TIMER, Router
from openlines.routing.settings import RoutingSettings
from openlines.routing.timekeeper import Timekeeper

CONSUMER = "routing.dialogs"
# The timers' own consumer: it follows every dialog event, apart from assignment's latency.
CLOCKS_CONSUMER = "routing.clocks"


def build_service(
    settings: RoutingSettings | None = None, *, clock: Clock = wall_clock
) -> ServiceRuntime:
    """`clock`: the timers' "now" (tests travel in time with a clock of their own)."""
    settings = settings or RoutingSettings()
    lines = load_lines(settings.lines_file)
    runtime = ServiceRuntime(settings, migrations=Path(__file__).parent / "migrations", clock=clock)
    router = Router(
        lines,
        runtime.event_store.outbox,
        schema=settings.schema_name,
        producer=settings.service_name,
        reservation_timeout=timedelta(seconds=settings.reservation_timeout_seconds),
        clock=clock,
    )

    async def sync_operators_and_drain() -> None:
        # max_dialogs may have grown in the config while we were down: drain what now fits.
        async with runtime.engine.begin() as conn:
            await store.lock_routing(conn, settings.schema_name)
            await store.sync_operators(conn, lines)
            await router.drain(conn, [line.id for line in lines.lines], cause=None)

    runtime.on_startup(sync_operators_and_drain)
    dialogs: Subscription = Subscription.configured(CONSUMER, [DIALOGS], settings)
    router.subscribe(dialogs)
    runtime.subscribe(dialogs)
    runtime.publishes(ROUTING, DIALOG_COMMANDS)
    runtime.on_timer(RESERVATION_TIMER, router.on_reservation_expired)
    timekeeper = Timekeeper(lines, router.emit)
    clocks: Subscription = Subscription.configured(CLOCKS_CONSUMER, [DIALOGS], settings)
    timekeeper.subscribe(clocks)
    runtime.subscribe(clocks)
    timekeeper.install(runtime.on_timer)
    runtime.routes(lambda app: api.install(app, api.ApiContext(runtime.engine, lines, router)))
    return runtime
