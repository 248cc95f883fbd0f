"""The HTTP contract of the whole suite: one OpenAPI 3.1 document from every service's route
declarations (the same ones their aiohttp apps are built from), as the gateway serves it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from typing import Any

from openlines.kit.http import openapi
from openlines.kit.http.routes import Operation, operations

OPENAPI_PATH = "/api/v1/openapi.json"


def sections() -> list[tuple[str, Sequence[Operation]]]:
    """(section, operations) for the gateway and each service with HTTP routes."""
    # Imported here: `openlines --help` and the gateway's start stay light.
    from openlines.crm_link import api as crm_link
    from openlines.dialogs.api import DialogsApi
    from openlines.ingest.api import WebhookApi
    from openlines.kit.http.app import KIT_OPERATIONS
    from openlines.notify.api import StreamApi
    from openlines.routing import api as routing
    from openlines.stack.gateway import Gateway

    return [
        ("ops", KIT_OPERATIONS),
        ("gateway", operations(Gateway)),
        ("ingest", operations(WebhookApi)),
        ("dialogs", operations(DialogsApi)),
        ("routing", operations(routing)),
        ("crm-link", operations(crm_link)),
        ("notify", operations(StreamApi)),
    ]


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
