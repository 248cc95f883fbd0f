"""Composition root: the DIALOGS consumer that records send jobs, and the sender loop."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from openlines.events.catalog import ChannelType
from openlines.events.envelope import Envelope
from openlines.events.lines import load_lines
from openlines.events.topics import DIALOGS, INBOUND, OUTBOUND
from openlines.kit.runtime import ServiceRuntime
from openlines.kit.subscription import Subscription
from openlines.outbound import handlers, mail_threads
from openlines.outbound.domain import Provider
from openlines.outbound.mail_threads import MailThreads
from openlines.outbound.sender import Sender
from openlines.outbound.settings import OutboundSettings
from openlines.outbound.smtp import EmailProvider
from openlines.outbound.telegram import TelegramProvider
from openlines.outbound.whatsapp import WhatsAppProvider
from openlines.outbound.widget import WidgetProvider

MIGRATIONS = Path(__file__).parent / "migrations"


def providers() -> Mapping[str, Provider]:
    """One provider per channel type outbound sends to (e-mail's needs the database: see
    build_service), as ingest's `channel_adapters` has one adapter per channel type it hears
    from."""
    return {
        ChannelType.TELEGRAM: TelegramProvider(),
        ChannelType.WHATSAPP: WhatsAppProvider(),
        ChannelType.WIDGET: WidgetProvider(),
    }


def build_service(settings: OutboundSettings | None = None) -> ServiceRuntime:
    settings = settings or OutboundSettings()
    lines = load_lines(settings.lines_file)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    # E-mail replies need the thread (subject, Message-IDs) from outbound's own table.
    email = EmailProvider(MailThreads(lambda: runtime.engine))
    sender = Sender(runtime, settings, lines, {**providers(), ChannelType.EMAIL: email})

    async def wake_sender(_: list[Envelope]) -> None:
        sender.wake()

    dialogs: Subscription = Subscription.configured(
        # The namespace keeps test suites sharing a broker out of each other's groups.
        "outbound.dialogs",
        [DIALOGS],
        settings,
        after_commit=wake_sender,
    )
    handlers.subscribe(dialogs)
    runtime.subscribe(dialogs)
    # The customers' mails, for their subject and Message-IDs (MessageAppended has neither).
    inbound: Subscription = Subscription.configured("outbound.inbound", [INBOUND], settings)
    mail_threads.subscribe(inbound)
    runtime.subscribe(inbound)
    runtime.publishes(OUTBOUND)
    runtime.run_in_background(sender.run)
    runtime.health.live["sender"] = lambda: time.monotonic() - sender.last_round_at < 60
    return runtime
