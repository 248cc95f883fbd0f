"""Composition root: settings, lines config, the DIALOGS consumer and the CRM routes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.crm_link import api
from openlines.crm_link.linking import CrmLink
from openlines.crm_link.settings import CrmLinkSettings
from openlines.events.topics import CRM, DIALOGS
from openlines.kit.lines import LinesConfig, load_lines
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription

CONSUMER = "crm-link.dialogs"


@dataclass(frozen=True)
class CrmLinkService:
    runtime: ServiceRuntime
    crm: CrmLink
    lines: LinesConfig


def build_service(settings: CrmLinkSettings | None = None) -> CrmLinkService:
    settings = settings or CrmLinkSettings()
    lines = load_lines(settings.lines_file)
    runtime = ServiceRuntime(settings, migrations=Path(__file__).parent / "migrations")
    crm = CrmLink(lines, runtime.event_store, attempts=settings.append_attempts)
    dialogs: Subscription[AsyncConnection] = Subscription(
        CONSUMER,
        topics=[DIALOGS],
        batch_size=settings.consumer_batch_size,
        max_attempts=settings.consumer_max_attempts,
    )
    crm.subscribe(dialogs)
    runtime.subscribe(dialogs)
    runtime.publishes(CRM)
    runtime.routes(lambda app: api.setup(app, api.ApiContext(runtime.engine, lines, crm)))
    return CrmLinkService(runtime, crm, lines)


def build_runtime(settings: CrmLinkSettings | None = None) -> ServiceRuntime:
    return build_service(settings).runtime
