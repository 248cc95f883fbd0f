"""The HTTP contract of the whole suite: one OpenAPI 3.1 document from every service's route
declarations (the same ones their aiohttp apps are built from), as the gateway serves it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from typing import Any

from aiohttp import web

from openlines.kit.http import openapi, routes
from openlines.kit.http.routes import Operation, operations

OPENAPI_PATH = "/api/v1/openapi.json"


def sections() -> list[tuple[str, Sequence[Operation]]]:
    """(section, operations) for the gateway and each service with HTTP routes."""
    # Imported here: `openlines --help` and the gateway's start stay light.
    from openlines.analytics import api as analytics
    from openlines.crm_link import api as crm_link
    from openlines.dialogs.api import DialogsApi
    from openlines.ingest.api import WebhookApi
    from openlines.kit.http.app import KIT_OPERATIONS
    from openlines.notify.api import StreamApi
    from openlines.notify.webhooks.api import WebhooksApi
    from openlines.routing import api as routing

    widget = _widget_operations()
    return [
        ("ops", KIT_OPERATIONS),
        ("gateway", operations(DocumentApi)),
        ("ingest", operations(WebhookApi)),
        ("dialogs", operations(DialogsApi)),
        ("routing", operations(routing)),
        ("crm-link", operations(crm_link)),
        ("notify", operations(StreamApi)),
        ("notify", operations(WebhooksApi)),
        ("analytics", operations(analytics)),
        ("widget", widget),
    ]


def _widget_operations() -> list[Operation]:
    """The website widget's public side: ingest's script and visitor endpoints, notify's
    visitor socket."""
    from openlines.ingest.visitor import VisitorApi
    from openlines.notify.visitors import VisitorSocketApi

    return [*operations(VisitorApi), *operations(VisitorSocketApi)]


DESCRIPTION = """\
The operator API and the provider webhooks of openlines, behind one gateway.

Errors: every 4xx/5xx body is `{"error": {"code", "message", "details"?}}`. Bad input:
400 `malformed_json` (the body is not JSON), 422 `invalid_body` (JSON that does not fit the
operation's body: unknown field, wrong type, missing field; `details.errors` lists them),
400 `invalid_query` (unknown, repeated or bad query parameter), 413 `payload_too_large`,
408 `body_timeout`. Request bodies are strict: no type coercion, no unknown fields.
Provider webhooks are the exception: their unknown fields are ignored.
"""


@cache
def openapi_document() -> dict[str, Any]:
    return openapi.document(
        sections(), title="openlines", version=version("openlines"), description=DESCRIPTION
    )


class DocumentApi:
    """The gateway's one route of its own: this document. (Here rather than in the gateway,
    which imports this module: the document lists the route that serves it.)"""

    def __init__(self) -> None:
        self._document: asyncio.Future[dict[str, Any]] | None = None

    @routes.get(
        OPENAPI_PATH,
        summary="This document: the HTTP API of the whole suite (OpenAPI 3.1)",
        responses={200: "the OpenAPI document"},
        auth="none",
    )
    async def openapi(self, _: web.Request) -> web.Response:
        # Built from every service's route declarations on first use: importing them all
        # takes seconds of CPU, which the gateway's start and its proxying should not pay.
        # Beside the loop, so requests keep flowing meanwhile.
        if self._document is None:
            self._document = asyncio.get_running_loop().run_in_executor(None, openapi_document)
        return web.json_response(await asyncio.shield(self._document))
