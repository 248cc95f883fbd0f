"""Composition root of ingest: settings, lines config, channel adapters, routes, readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from openlines.events.catalog import ChannelType
from openlines.events.lines import load_lines
from openlines.events.topics import INBOUND
from openlines.ingest.api import WebhookApi
from openlines.ingest.domain import ChannelAdapter
from openlines.ingest.settings import IngestSettings
from openlines.ingest.telegram import TelegramAdapter
from openlines.ingest.visitor import VisitorApi
from openlines.ingest.widget import WidgetAdapter
from openlines.kit.runtime import ServiceRuntime


def channel_adapters() -> Mapping[str, ChannelAdapter]:
    """One adapter per channel type that has webhooks (whatsapp and widget come next)."""
    return {ChannelType.TELEGRAM: TelegramAdapter(), ChannelType.WIDGET: WidgetAdapter()}


def build_service(settings: IngestSettings | None = None) -> ServiceRuntime:
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(settings, uses_database=False)
    api = WebhookApi(
        lines=load_lines(settings.lines_file),
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
    return runtime
