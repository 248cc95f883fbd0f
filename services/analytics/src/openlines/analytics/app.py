"""Composition root: the metrics consumer (dialogs and routing topics) and the reports API."""

from __future__ import annotations

from pathlib import Path

from openlines.analytics import api, projection
from openlines.analytics.metrics import DIALOG_EVENTS, SLA_EVENTS
from openlines.analytics.settings import AnalyticsSettings
from openlines.events.lines import load_lines
from openlines.events.topics import DIALOGS, ROUTING
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription

CONSUMER = "analytics.metrics"


def build_service(settings: AnalyticsSettings | None = None) -> ServiceRuntime:
    settings = settings or AnalyticsSettings()
    lines = load_lines(settings.lines_file)
    # It writes no stream of its own: no relay.
    runtime = ServiceRuntime(
        settings, migrations=Path(__file__).parent / "migrations", runs_relay=False
    )
    events: Subscription = Subscription.configured(CONSUMER, [DIALOGS, ROUTING], settings)
    # The CSAT hook: register `DialogRated` here once the catalog has it (issue 14 §3);
    # metrics.step already reads it.
    events.on(*DIALOG_EVENTS, *SLA_EVENTS)(projection.apply)
    runtime.subscribe(events)
    runtime.routes(
        lambda app: api.install(app, api.ApiContext(runtime.engine, lines, settings.csv_chunk_rows))
    )
    return runtime
