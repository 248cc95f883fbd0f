"""Composition root: the metrics consumer (dialogs and routing topics) and the reports API."""

from __future__ import annotations

from pathlib import Path

from openlines.analytics import api, projection
from openlines.analytics.settings import AnalyticsSettings
from openlines.events.lines import load_lines
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
    events: Subscription = Subscription.configured(CONSUMER, projection.TOPICS_READ, settings)
    events.on(*projection.APPLIED)(projection.apply)
    runtime.subscribe(events)
    runtime.routes(
        lambda app: api.install(app, api.ApiContext(runtime.engine, lines, settings.csv_chunk_rows))
    )
    return runtime
