"""Composition root of the dialogs service."""

from __future__ import annotations

from pathlib import Path

from openlines.dialogs import crm_cards
from openlines.dialogs.api import DialogsApi
from openlines.dialogs.handlers import Handlers
from openlines.dialogs.settings import DialogsSettings
from openlines.dialogs.writer import DialogWriter
from openlines.events.lines import load_lines
from openlines.events.topics import CRM, DIALOG_COMMANDS, DIALOGS, INBOUND, OUTBOUND, ROUTING
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription

MIGRATIONS = Path(__file__).parent / "migrations"


def build_service(settings: DialogsSettings | None = None) -> ServiceRuntime:
    settings = settings or DialogsSettings()
    lines = load_lines(settings.lines_file)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    writer = DialogWriter(runtime.event_store, attempts=settings.command_attempts, lines=lines)
    handlers = Handlers(writer, lines)

    inputs: Subscription = Subscription.configured(
        "dialogs", [INBOUND, DIALOG_COMMANDS, OUTBOUND, CRM, ROUTING], settings
    )
    handlers.subscribe(inputs)
    crm_cards.subscribe(inputs)
    runtime.subscribe(inputs)
    runtime.publishes(DIALOGS)

    api = DialogsApi(lambda: runtime.engine, writer, lines)
    runtime.routes(api.install)
    return runtime
