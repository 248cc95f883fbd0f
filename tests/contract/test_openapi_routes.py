"""The OpenAPI document describes exactly the routes the apps serve: a route added without a
declaration, or a declaration without a route, fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from openlines.analytics.app import build_service as analytics_service
from openlines.crm_link.app import build_service as crm_link_service
from openlines.dialogs.app import build_service as dialogs_service
from openlines.ingest.app import build_service as ingest_service
from openlines.kit.http.app import create_app
from openlines.kit.runtime import ServiceRuntime
from openlines.notify.app import build_service as notify_service
from openlines.outbound.app import build_service as outbound_service
from openlines.routing.app import build_service as routing_service
from openlines.stack.contract import openapi_document
from openlines.stack.gateway import ROUTES, GatewaySettings, create_gateway_app

LINES = str(Path(__file__).resolve().parents[2] / "config" / "demo.yaml")
PROXY = "/{tail}"  # the gateway's catch-all: what it proxies is described by the services


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of an app, as aiohttp will match them."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and route.resource.canonical != PROXY
    }


def service_app(runtime: ServiceRuntime) -> web.Application:
    # The app `ServiceRuntime.start` would serve, built without starting anything: the engine
    # is created lazily and never connects here.
    if runtime.uses_database:
        runtime._engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(runtime.settings, runtime.health)
    for build in runtime._route_builders:
        build(app)
    return app


def all_apps() -> dict[str, web.Application]:
    builders: dict[str, Callable[[], ServiceRuntime]] = {
        "ingest": ingest_service,
        "dialogs": dialogs_service,
        "routing": routing_service,
        "crm-link": crm_link_service,
        "notify": notify_service,
        "outbound": outbound_service,
        "analytics": analytics_service,
    }
    apps = {name: service_app(build()) for name, build in builders.items()}
    apps["gateway"] = create_gateway_app(GatewaySettings())
    return apps


def documented() -> set[tuple[str, str]]:
    paths = openapi_document()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_is_documented_and_every_documented_route_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENLINES_LINES_FILE", LINES)
    routes = {name: served(app) for name, app in all_apps().items()}
    doc = documented()
    for name, found in routes.items():
        assert found <= doc, f"{name} serves routes the document does not describe: {found - doc}"
    everything = set().union(*routes.values())
    assert doc <= everything, f"documented but served by no app: {doc - everything}"
    assert ("POST", "/api/v1/dialogs/{id}/messages") in routes["dialogs"]
    assert ("GET", "/api/v1/openapi.json") in routes["gateway"]


def test_every_schema_reference_resolves() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    refs = set(re.findall(r"#/components/schemas/([\w.-]+)", json.dumps(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])
    operations = [op for path in doc["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    links = [
        link
        for op in operations
        for answer in op["responses"].values()
        for link in answer.get("links", {}).values()
    ]
    assert links and {link["operationId"] for link in links} <= set(ids)


CRM_ROUTES = {
    ("POST", "/api/v1/dialogs/{dialog_id}/lead"),
    ("GET", "/api/v1/crm/leads/{lead_id}"),
    ("POST", "/api/v1/crm/leads/{lead_id}/convert"),
    ("POST", "/api/v1/dialogs/{dialog_id}/deal"),
    ("GET", "/api/v1/crm/contacts"),
    ("GET", "/api/v1/crm/contacts/{entity_id}"),
    ("PATCH", "/api/v1/crm/contacts/{entity_id}"),
    ("POST", "/api/v1/crm/contacts/{entity_id}/channels"),
    ("GET", "/api/v1/crm/companies"),
    ("GET", "/api/v1/crm/companies/{entity_id}"),
    ("GET", "/api/v1/crm/deals"),
    ("GET", "/api/v1/crm/deals/{entity_id}"),
    ("GET", "/api/v1/crm/customers/{customer_id}"),
    ("POST", "/api/v1/crm/customers/merge"),
}


def test_the_crm_routes_are_documented_and_the_gateway_sends_them_to_crm_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENLINES_LINES_FILE", LINES)
    api = {(m, p) for m, p in served(all_apps()["crm-link"]) if p.startswith("/api/")}
    assert api == CRM_ROUTES
    assert documented() >= CRM_ROUTES
    for _, path in CRM_ROUTES:
        concrete = path.replace("{", "").replace("}", "")
        route = next(r for r in ROUTES if r.pattern.fullmatch(concrete))
        assert route.upstream == "crm-link", path
    # The dialog's crm block may be hidden by CRM rights: the document says it may be null.
    dialog = openapi_document()["components"]["schemas"]["DialogView"]["properties"]["crm"]
    assert {"type": "null"} in dialog.get("anyOf", [])
