"""Composition root of ingest: settings, lines config, channel adapters, routes, readiness."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

from openlines.events.catalog import ChannelType
from openlines.events.lines import LinesConfig, load_lines
from openlines.events.topics import INBOUND
from openlines.ingest.api import WebhookApi
from openlines.ingest.domain import ChannelAdapter
from openlines.ingest.settings import IngestSettings
from openlines.ingest.smtp import MailEndpoint, MailHandler, email_channels
from openlines.ingest.telegram import TelegramAdapter
from openlines.ingest.visitor import VisitorApi
from openlines.ingest.whatsapp import WhatsAppAdapter
from openlines.ingest.widget import WidgetAdapter
from openlines.kit.runtime import ServiceRuntime


def channel_adapters() -> Mapping[str, ChannelAdapter]:
    """One adapter per channel type that has webhooks (e-mail arrives over SMTP instead)."""
    return {
        ChannelType.TELEGRAM: TelegramAdapter(),
        ChannelType.WHATSAPP: WhatsAppAdapter(),
        ChannelType.WIDGET: WidgetAdapter(),
    }


def build_service(settings: IngestSettings | None = None) -> ServiceRuntime:
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(settings, uses_database=False)
    lines = load_lines(settings.lines_file)
    api = WebhookApi(
        lines=lines,
        adapters=channel_adapters(),
        publish=runtime.publish,
        publish_timeout=settings.publish_timeout_seconds,
        producer_name=settings.service_name,
    )
    runtime.routes(api.install)
    # The widget's script and visitor endpoints (the visitor socket is notify's).
    visitors = VisitorApi(
        lines=api.lines,
        publish=runtime.publish,
        publish_timeout=settings.publish_timeout_seconds,
        producer_name=settings.service_name,
    )
    runtime.routes(visitors.install)
    runtime.publishes(INBOUND)

    async def broker_answers() -> bool:
        # A metadata round trip: the producer can reach the cluster right now.
        async with asyncio.timeout(settings.readiness_timeout_seconds):
            await runtime.producer.client.fetch_all_metadata()
        return True

    runtime.health.ready["broker"] = broker_answers
    if email_channels(lines):
        runtime.run_in_background(mail_endpoint(settings, runtime, lines).run)
    return runtime


def mail_endpoint(
    settings: IngestSettings, runtime: ServiceRuntime, lines: LinesConfig
) -> MailEndpoint:
    """The SMTP endpoint of the email channels (e-mail arrives by SMTP, not by webhook)."""
    tls: ssl.SSLContext | None = None
    if settings.smtp_tls_certfile and settings.smtp_tls_keyfile:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.smtp_tls_certfile, settings.smtp_tls_keyfile)
    handler = MailHandler(
        lines,
        runtime.publish,
        publish_timeout=settings.publish_timeout_seconds,
        producer_name=settings.service_name,
    )
    return MailEndpoint(
        handler,
        host=settings.smtp_host,
        port=settings.smtp_port,
        hostname=settings.smtp_hostname,
        tls_context=tls,
    )
