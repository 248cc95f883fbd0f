"""The production guard: no start on published secrets, no long-lived tokens, no query tokens
on REST (only on the WebSocket stream)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from openlines.kit.http.app import create_app
from openlines.kit.http.auth import issue_token, require_principal
from openlines.kit.settings import (
    DEMO_SECRETS,
    DEV_JWT_SECRET,
    KitSettings,
    ProductionGuardError,
)

ROOT = Path(__file__).resolve().parents[3]
DEMO_LINES = ROOT / "config" / "demo.yaml"
SECRET = "a-production-secret-of-at-least-32-bytes"
SETTINGS_CLASSES = [
    "openlines.ingest.settings.IngestSettings",
    "openlines.dialogs.settings.DialogsSettings",
    "openlines.routing.settings.RoutingSettings",
    "openlines.notify.settings.NotifySettings",
    "openlines.crm_link.settings.CrmLinkSettings",
    "openlines.outbound.settings.OutboundSettings",
    "openlines.stack.gateway.GatewaySettings",
]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINES_")}
    return {**env, "OPENLINES_LINES_FILE": str(DEMO_LINES), **extra}


# -- refusing to start --------------------------------------------------------------------


@pytest.mark.infra  # processes of its own
def test_a_production_service_does_not_start_with_the_dev_jwt_secret() -> None:
    # The real entry point, as a deployment runs it. The guard runs before any connection:
    # no database or broker is needed to see it.
    result = subprocess.run(
        [sys.executable, "-m", "openlines.outbound"],
        env=_clean_env(OPENLINES_ENV="production", OPENLINES_DATABASE_URL="postgresql://x@0/x"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ProductionGuardError" in last and "refuses the dev JWT secret" in last, result.stderr


@pytest.mark.parametrize("settings_class", SETTINGS_CLASSES)
def test_every_services_settings_refuse_the_dev_jwt_secret_in_production(
    settings_class: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each service builds its settings first thing at start-up (python -m starts ~30 s per
    # process on a loaded machine, so one process above and the classes here).
    module, name = settings_class.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    monkeypatch.setenv("OPENLINES_ENV", "production")
    monkeypatch.setenv("OPENLINES_LINES_FILE", str(DEMO_LINES))
    monkeypatch.delenv("OPENLINES_JWT_SECRET", raising=False)
    with pytest.raises(ProductionGuardError, match="dev JWT secret"):
        cls()


@pytest.mark.infra  # processes of its own
def test_a_production_service_does_not_start_with_a_demo_channel_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openlines.ingest"],
        env=_clean_env(OPENLINES_ENV="production", OPENLINES_JWT_SECRET=SECRET),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "refuses the demo secret of channel 'tg-demo'" in last, result.stderr
    assert "OPENLINES_SECRET_TG_DEMO" in last


def test_production_settings_pass_once_every_published_secret_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENLINES_ENV", "production")
    monkeypatch.setenv("OPENLINES_LINES_FILE", str(DEMO_LINES))
    monkeypatch.setenv("OPENLINES_JWT_SECRET", SECRET)
    with pytest.raises(ProductionGuardError, match="demo secret"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_SECRET_TG_DEMO", "a-real-webhook-secret")
    with pytest.raises(ProductionGuardError, match="demo token"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_TOKEN_TG_DEMO", "999:a-real-bot-token")
    with pytest.raises(ProductionGuardError, match="channel 'mail-demo'"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_SECRET_MAIL_DEMO", "a-real-thread-secret")
    # wa-demo: its app secret, access token and verify token, in turn.
    with pytest.raises(ProductionGuardError, match="demo secret of channel 'wa-demo'"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_SECRET_WA_DEMO", "a-real-app-secret")
    with pytest.raises(ProductionGuardError, match="demo token of channel 'wa-demo'"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_TOKEN_WA_DEMO", "a-real-access-token")
    with pytest.raises(ProductionGuardError, match="demo verify token of channel 'wa-demo'"):
        KitSettings()
    monkeypatch.setenv("OPENLINES_VERIFY_TOKEN_WA_DEMO", "a-real-verify-token")
    monkeypatch.setenv("OPENLINES_SECRET_WEB_DEMO", "a-real-widget-secret")
    assert KitSettings().env == "production"
    # Development, the default, runs on the demo values.
    monkeypatch.delenv("OPENLINES_ENV")
    monkeypatch.delenv("OPENLINES_JWT_SECRET")
    assert KitSettings().jwt_secret == DEV_JWT_SECRET


def test_a_jwks_setup_needs_no_jwt_secret_in_production(tmp_path: Path) -> None:
    lines = tmp_path / "lines.yaml"
    lines.write_text("operators: []\nlines: []\n")
    settings = KitSettings(
        env="production",
        lines_file=str(lines),
        jwt_jwks_url="https://idp.example/jwks.json",
        jwt_algorithm="RS256",
    )
    assert settings.jwt_secret == DEV_JWT_SECRET  # unused: keys come from the JWKS


def test_demo_secrets_cover_every_credential_of_the_demo_lines_file() -> None:
    data = yaml.safe_load(DEMO_LINES.read_text())
    published = {
        channel[field]
        for line in data["lines"]
        for channel in line["channels"]
        for field in ("secret", "token")
        if channel.get(field)
    }
    verify_tokens = {
        channel["whatsapp"]["verify_token"]
        for line in data["lines"]
        for channel in line["channels"]
        if channel.get("whatsapp", {}).get("verify_token")
    }
    assert published and published <= DEMO_SECRETS
    assert verify_tokens <= DEMO_SECRETS


# -- token rules ---------------------------------------------------------------------------


async def rest(request: web.Request) -> web.Response:
    principal = await require_principal(request)
    return web.json_response({"operator": principal.operator_id})


async def stream(request: web.Request) -> web.StreamResponse:
    # As notify's GET /api/v1/stream: the one kind of route that opts into ?token=.
    principal = await require_principal(request, query_token=True)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"type": "hello", "operator_id": principal.operator_id})
    await ws.close()
    return ws


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(KitSettings(jwt_secret=SECRET, jwt_max_lifetime_seconds=3600))
    app.router.add_get("/api/v1/dialogs", rest)
    app.router.add_get("/api/v1/stream", stream)
    async with TestClient(TestServer(app)) as c:
        yield c


def _claims_token(**claims: Any) -> str:
    return jwt.encode({"sub": "ann", "roles": ["operator"], **claims}, SECRET, algorithm="HS256")


async def _status(client: TestClient[Any, Any], token: str) -> tuple[int, str | None]:
    resp = await client.get("/api/v1/dialogs", headers={"Authorization": f"Bearer {token}"})
    body = await resp.json()
    return resp.status, (body.get("error") or {}).get("code")


async def test_a_token_living_longer_than_the_maximum_is_401(
    client: TestClient[Any, Any],
) -> None:
    now = int(time.time())
    at_limit = issue_token("ann", ["operator"], secret=SECRET, ttl_seconds=3600)
    assert await _status(client, at_limit) == (200, None)
    assert (await _status(client, _claims_token(iat=now, exp=now + 3600)))[0] == 200
    too_long = issue_token("ann", ["operator"], secret=SECRET, ttl_seconds=3601)
    assert await _status(client, too_long) == (401, "token_lifetime_too_long")
    # Issued long ago, still valid for a while: its lifetime counts, not what is left of it.
    assert await _status(client, _claims_token(iat=now - 86400, exp=now + 60)) == (
        401,
        "token_lifetime_too_long",
    )
    # Without iat, what is left of it must fit.
    assert (await _status(client, _claims_token(exp=now + 600)))[0] == 200
    assert await _status(client, _claims_token(exp=now + 365 * 86400)) == (
        401,
        "token_lifetime_too_long",
    )
    # No exp at all stays refused, as before.
    assert await _status(client, _claims_token(iat=now)) == (401, "invalid_token")


def test_the_default_maximum_admits_the_dev_token_commands_default() -> None:
    # `openlines token` issues 12 h tokens (issue_token's default) in development.
    assert KitSettings().jwt_max_lifetime_seconds == 12 * 3600
    token = issue_token("ann", ["operator"], secret=SECRET)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] <= KitSettings().jwt_max_lifetime_seconds


async def test_a_query_token_is_refused_on_rest_and_accepted_on_the_stream(
    client: TestClient[Any, Any],
) -> None:
    token = issue_token("ann", ["operator"], secret=SECRET, ttl_seconds=600)
    resp = await client.get("/api/v1/dialogs", params={"token": token})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "query_token_not_allowed"
    # The header still works there; a header wins over a query token.
    resp = await client.get(
        "/api/v1/dialogs", params={"token": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200

    ws = await client.ws_connect("/api/v1/stream", params={"token": token})
    message = await ws.receive()
    assert message.type is WSMsgType.TEXT
    assert message.json() == {"type": "hello", "operator_id": "ann"}
    await ws.close()
    # The stream still refuses a bad or too long-lived token before the upgrade.
    too_long = issue_token("ann", ["operator"], secret=SECRET, ttl_seconds=7200)
    resp = await client.get("/api/v1/stream", params={"token": too_long})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "token_lifetime_too_long"


def test_a_production_service_does_not_start_with_a_test_time_scale(tmp_path: Path) -> None:
    lines = tmp_path / "lines.yaml"
    lines.write_text("lines: [{id: fast, channels: [], test_time_scale: 0.1}]\n")
    with pytest.raises(ProductionGuardError, match="test_time_scale"):
        KitSettings(env="production", lines_file=str(lines), jwt_secret=SECRET)
    assert KitSettings(lines_file=str(lines)).env == "development"  # tests run on it
