"""The app factory: JSON errors, body limits, request ids, JWT auth, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from openlines.kit.embedded.ports import reserve_port
from openlines.kit.http.app import create_app
from openlines.kit.http.auth import issue_token, require_principal
from openlines.kit.http.errors import ApiError
from openlines.kit.http.health import Health
from openlines.kit.http.routes import read_json
from openlines.kit.settings import KitSettings

SETTINGS = KitSettings(http_body_limit=1024, jwt_secret="test-secret-with-at-least-32-bytes!")


async def echo(request: web.Request) -> web.Response:
    principal = await require_principal(request)
    body = await read_json(request)
    if body == {"fail": True}:
        raise ApiError(409, "already_taken", "someone else holds it")
    return web.json_response(
        {"operator": principal.operator_id, "body": body, "supervisor": principal.is_supervisor}
    )


async def crash(_: web.Request) -> web.Response:
    raise RuntimeError("bug")


async def database_down(_: web.Request) -> web.Response:
    # A real engine towards a port where no Postgres listens: what a handler meets while the
    # database restarts.
    engine = create_async_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{reserve_port()}/postgres",
        connect_args={"connect_timeout": 2},
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    return web.json_response({})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    ready = {"flag": False}
    health = Health(live={"loop": lambda: True}, ready={"consumer": lambda: ready["flag"]})
    app = create_app(SETTINGS, health)
    app.router.add_post("/api/echo", echo)
    app.router.add_get("/api/crash", crash)
    app.router.add_get("/api/database-down", database_down)
    app["ready_flag"] = ready
    async with TestClient(TestServer(app)) as c:
        yield c


def token(
    sub: str = "ann",
    roles: list[str] | None = None,
    secret: str = "test-secret-with-at-least-32-bytes!",
) -> str:
    return issue_token(sub, roles or ["operator"], secret=secret)


async def test_authenticated_request_gets_principal_and_request_id(client: TestClient) -> None:
    resp = await client.post(
        "/api/echo",
        json={"x": 1},
        headers={"Authorization": f"Bearer {token(roles=['supervisor'])}", "X-Request-ID": "req-1"},
    )
    assert resp.status == 200
    assert await resp.json() == {"operator": "ann", "body": {"x": 1}, "supervisor": True}
    assert resp.headers["X-Request-ID"] == "req-1"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthorized"),
        ({"Authorization": "Bearer nonsense"}, "invalid_token"),
        (
            {"Authorization": f"Bearer {token(secret='other-secret-with-at-least-32-bytes!')}"},
            "invalid_token",
        ),
    ],
)
async def test_missing_or_bad_tokens_are_401(
    client: TestClient,
    headers: dict[str, str],
    code: str,
) -> None:
    resp = await client.post("/api/echo", json={}, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == code


async def test_a_lines_claim_that_is_not_a_list_of_strings_is_401(client: TestClient) -> None:
    for lines in ([["demo"]], "demo", [1]):
        bad = jwt.encode(
            {"sub": "ann", "roles": [], "lines": lines, "exp": 2**40},
            "test-secret-with-at-least-32-bytes!",
            algorithm="HS256",
        )
        resp = await client.post("/api/echo", json={}, headers={"Authorization": f"Bearer {bad}"})
        assert (resp.status, (await resp.json())["error"]["code"]) == (401, "invalid_token")


async def test_expired_token_is_401(client: TestClient) -> None:
    expired = jwt.encode(
        {"sub": "ann", "roles": [], "exp": 1},
        "test-secret-with-at-least-32-bytes!",
        algorithm="HS256",
    )
    resp = await client.post("/api/echo", json={}, headers={"Authorization": f"Bearer {expired}"})
    assert resp.status == 401


async def test_bad_input_gets_machine_readable_4xx(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {token()}"}
    malformed = await client.post("/api/echo", data=b"{nope", headers=auth)
    assert malformed.status == 400
    assert (await malformed.json())["error"]["code"] == "malformed_json"
    # Postgres text cannot store NUL: refused at the edge, not as a 500 deep in a write.
    for body in (b'{"text": "a\\u0000b"}', b'{"a\\u0000": 1}', b'[["\\u0000"]]'):
        nul = await client.post("/api/echo", data=body, headers=auth)
        assert (nul.status, (await nul.json())["error"]["code"]) == (400, "invalid_text"), body
    # An escaped backslash followed by "u0000" is plain text, not a NUL.
    plain = await client.post("/api/echo", data=b'{"text": "a\\\\u0000"}', headers=auth)
    assert plain.status == 200 and (await plain.json())["body"] == {"text": "a\\u0000"}
    big = await client.post("/api/echo", data=b"[" + b"1," * 2000 + b"1]", headers=auth)
    assert big.status == 413
    assert (await big.json())["error"]["code"] == "payload_too_large"
    conflict = await client.post("/api/echo", json={"fail": True}, headers=auth)
    assert conflict.status == 409
    assert (await conflict.json())["error"] == {
        "code": "already_taken",
        "message": "someone else holds it",
    }
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_unhandled_error_is_json_500_and_server_keeps_running(client: TestClient) -> None:
    resp = await client.get("/api/crash")
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "internal"
    assert (await client.get("/healthz")).status == 200


async def test_readiness_follows_its_checks_and_metrics_are_served(client: TestClient) -> None:
    not_ready = await client.get("/readyz")
    assert not_ready.status == 503
    assert (await not_ready.json())["checks"] == {"consumer": False}
    client.app["ready_flag"]["flag"] = True
    assert (await client.get("/readyz")).status == 200
    await client.get("/api/crash")
    metrics = await (await client.get("/metrics")).text()
    assert 'openlines_http_requests_total{method="GET",route="/api/crash",status="500"}' in metrics


async def test_a_database_outage_is_503_with_retry_after_not_a_500(client: TestClient) -> None:
    resp = await client.get("/api/database-down")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"]["code"] == "unavailable"
