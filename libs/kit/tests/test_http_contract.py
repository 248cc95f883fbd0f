"""Declared routes: strict bodies and query strings, bodies in bounded time, JSON for protocol
errors, no `Server` header, and an OpenAPI document from the same declarations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import Field
from structlog.testing import capture_logs

from openlines.kit.http import openapi, routes
from openlines.kit.http.app import KIT_OPERATIONS, create_app
from openlines.kit.settings import KitSettings

SETTINGS = KitSettings(
    http_body_limit=4096,
    http_body_timeout_seconds=0.5,
    jwt_secret="test-secret-with-at-least-32-bytes!",
)


class NoteBody(routes.StrictModel):
    text: str = Field(max_length=20)
    count: int = 1
    reply_to: UUID | None = None


class NoteQuery(routes.QueryModel):
    limit: int = Field(default=10, ge=1, le=50)
    tab: str = "all"


class Note(routes.StrictModel):
    """The note as stored."""

    text: str
    count: int


class Notes:
    @routes.post(
        "/notes/{id}", summary="add a note", body=NoteBody, responses={201: Note}, auth="none"
    )
    async def add(self, request: web.Request, *, body: NoteBody) -> web.Response:
        return web.json_response({"text": body.text, "count": body.count}, status=201)

    @routes.get(
        "/notes", summary="list", query=NoteQuery, responses={200: "the notes"}, auth="none"
    )
    async def list(self, request: web.Request, *, query: NoteQuery) -> web.Response:
        return web.json_response({"limit": query.limit, "tab": query.tab})

    @routes.post("/notes/{id}/pin", summary="pin", responses={204: None}, auth="none")
    async def pin(self, request: web.Request) -> web.Response:
        return web.Response(status=204)


class ServedLikeProduction(TestServer):
    """aiohttp's TestServer cancels a handler whose client left; the services' runner does
    not (the handler gets ConnectionResetError from the body instead)."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = create_app(SETTINGS)
    routes.install(app, Notes())
    async with TestClient(ServedLikeProduction(app)) as c:
        yield c


async def code_of(resp: object) -> tuple[int, str]:
    assert hasattr(resp, "json") and hasattr(resp, "status")
    return resp.status, (await resp.json())["error"]["code"]


async def test_a_body_is_validated_strictly(client: TestClient) -> None:
    ok = await client.post("/notes/1", json={"text": "hi", "count": 2})
    assert (ok.status, await ok.json()) == (201, {"text": "hi", "count": 2})
    # An unknown field is refused, not ignored: {"internal": true} must not be dropped silently.
    assert await code_of(await client.post("/notes/1", json={"text": "x", "internal": True})) == (
        422,
        "invalid_body",
    )
    for bad in ({"text": 1}, {"text": "x", "count": "2"}, {"text": "x" * 21}, {}, ["x"], "x"):
        assert await code_of(await client.post("/notes/1", json=bad)) == (422, "invalid_body"), bad
    refused = await client.post("/notes/1", json={"text": "x", "internal": True})
    details = (await refused.json())["error"]["details"]["errors"]
    assert [(e["field"], e["type"]) for e in details] == [("internal", "extra_forbidden")]
    assert await code_of(await client.post("/notes/1", data=b"{nope")) == (400, "malformed_json")
    uuid_ok = await client.post("/notes/1", json={"text": "x", "reply_to": str(UUID(int=1))})
    assert uuid_ok.status == 201


async def test_a_route_without_a_body_refuses_one(client: TestClient) -> None:
    assert (await client.post("/notes/1/pin")).status == 204
    assert (await client.post("/notes/1/pin", json={})).status == 204
    assert await code_of(await client.post("/notes/1/pin", json={"force": True})) == (
        422,
        "invalid_body",
    )


async def test_a_query_string_is_validated_and_unknown_parameters_refused(
    client: TestClient,
) -> None:
    ok = await client.get("/notes", params={"limit": "5"})
    assert await ok.json() == {"limit": 5, "tab": "all"}
    for params in (
        {"limit": "0"},
        {"limit": "x"},
        {"unanswered": "1"},
        {"sort": "oldest"},
        [("tab", "a"), ("tab", "b")],
        {"tab": "a\x00b"},
    ):
        resp = await client.get("/notes", params=params)
        assert await code_of(resp) == (400, "invalid_query"), params
    # A route without a query model takes no parameters at all.
    assert await code_of(await client.post("/notes/1?x=1", json={"text": "y"})) == (
        400,
        "invalid_query",
    )


async def test_no_server_header_on_any_answer(client: TestClient) -> None:
    for resp in (
        await client.get("/healthz"),
        await client.get("/nowhere"),
        await client.post("/notes/1", json={}),
    ):
        assert "Server" not in resp.headers, resp.headers


async def _raw(client: TestClient, request: bytes) -> bytes:
    """Send raw bytes; the answer, read up to its Content-Length."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            raw = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in raw.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return raw + await reader.readexactly(length)
    finally:
        writer.close()


async def test_protocol_errors_get_the_json_shape_without_server(client: TestClient) -> None:
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"NOT A REQUEST\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ):
        raw = await _raw(client, request)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400", raw
        assert b"\r\nserver:" not in head.lower(), head
        assert b"application/json" in head.lower(), head
        assert json.loads(body)["error"]["code"] == "bad_request", body


async def test_a_body_that_stops_arriving_times_out_with_408(client: TestClient) -> None:
    raw = await _raw(
        client,
        b"POST /notes/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"text": ',
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"408", raw
    assert json.loads(body)["error"]["code"] == "body_timeout"


async def test_a_client_gone_mid_body_is_no_500_and_no_error_log(client: TestClient) -> None:
    with capture_logs() as logs:
        _, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b'POST /notes/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"text": ')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # The server notices the disconnect; wait for its log line with a deadline.
        async with asyncio.timeout(10):
            while not any(e.get("event") == "client disconnected mid-body" for e in logs):
                await asyncio.sleep(0.02)
    assert not [e for e in logs if e.get("log_level") in ("error", "critical")], logs
    metrics = await (await client.get("/metrics")).text()
    assert 'route="/notes/{id}",status="500"' not in metrics


def test_the_document_comes_from_the_declarations() -> None:
    doc = openapi.document(
        [("kit", KIT_OPERATIONS), ("notes", routes.operations(Notes))], title="t", version="1"
    )
    assert doc["openapi"].startswith("3.1")
    add = doc["paths"]["/notes/{id}"]["post"]
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteBody"
    }
    assert add["requestBody"]["required"] is True
    assert doc["components"]["schemas"]["NoteBody"]["additionalProperties"] is False
    assert set(add["responses"]) >= {"201", "400", "408", "413", "422"}
    assert add["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    listed = doc["paths"]["/notes"]["get"]
    assert {p["name"]: p["schema"].get("maximum") for p in listed["parameters"]} == {
        "limit": 50,
        "tab": None,
    }
    assert set(doc["paths"]) == {
        *("/healthz", "/readyz", "/metrics"),
        *("/notes/{id}", "/notes", "/notes/{id}/pin"),
    }
