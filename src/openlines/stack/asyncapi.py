"""The Kafka contract of the whole suite: one AsyncAPI 3.0 document from every service's
FastStream broker (its real subscribers, and the publishers it declares for the topics it
writes), built from the services' composition roots without connecting to Kafka."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any

from openlines.kit.runtime import ServiceRuntime
from openlines.stack.services import DEMO_LINES

DESCRIPTION = """\
Event contracts of openlines (catalog v1), as the services consume and produce them. One JSON
envelope per record, key = stream_id; a subscriber's batch is a list of such records. Poison
records go to `<topic>.dlq` with their origin in the headers.
"""


def runtimes() -> list[ServiceRuntime]:
    """Every service with Kafka endpoints, as `python -m openlines.<service>` builds it."""
    # Imported here: `openlines --help` stays light.
    from openlines.analytics.app import build_service as analytics
    from openlines.analytics.settings import AnalyticsSettings
    from openlines.crm_link.app import build_service as crm_link
    from openlines.crm_link.settings import CrmLinkSettings
    from openlines.dialogs.app import build_service as dialogs
    from openlines.dialogs.settings import DialogsSettings
    from openlines.ingest.app import build_service as ingest
    from openlines.ingest.settings import IngestSettings
    from openlines.notify.app import build_service as notify
    from openlines.notify.settings import NotifySettings
    from openlines.outbound.app import build_service as outbound
    from openlines.outbound.settings import OutboundSettings
    from openlines.routing.app import build_service as routing
    from openlines.routing.settings import RoutingSettings

    lines = str(DEMO_LINES)
    return [
        ingest(IngestSettings(lines_file=lines)),
        dialogs(DialogsSettings(lines_file=lines)),
        routing(RoutingSettings(lines_file=lines)),
        crm_link(CrmLinkSettings(lines_file=lines)),
        outbound(OutboundSettings(lines_file=lines)),
        notify(NotifySettings(lines_file=lines)),
        analytics(AnalyticsSettings(lines_file=lines)),
    ]


@cache
def asyncapi_document() -> dict[str, Any]:
    from faststream.specification import AsyncAPI

    spec = AsyncAPI(
        *(runtime.broker for runtime in runtimes()),
        title="openlines events",
        version=version("openlines"),
        description=DESCRIPTION,
        schema_version="3.0.0",
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document
