"""Composition root: settings, lines config, the DIALOGS consumer and the CRM routes."""

from __future__ import annotations

from pathlib import Path

from openlines.crm_link import api
from openlines.crm_link.linking import CrmLink
from openlines.crm_link.settings import CrmLinkSettings
from openlines.events.lines import load_lines
from openlines.events.topics import CRM, DIALOGS
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription

CONSUMER = "crm-link.dialogs"


def build_service(settings: CrmLinkSettings | None = None) -> ServiceRuntime:
    settings = settings or CrmLinkSettings()
    lines = load_lines(settings.lines_file)
    runtime = ServiceRuntime(settings, migrations=Path(__file__).parent / "migrations")
    crm = CrmLink(lines, runtime.event_store, attempts=settings.append_attempts)
    dialogs: Subscription = Subscription.configured(CONSUMER, [DIALOGS], settings)
    crm.subscribe(dialogs)
    runtime.subscribe(dialogs)
    runtime.publishes(CRM)
    runtime.routes(lambda app: api.install(app, api.ApiContext(runtime.engine, lines, crm)))
    return runtime
