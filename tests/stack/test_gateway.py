"""The gateway proxies to real aiohttp upstreams started here: HTTP, streaming, WebSockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from openlines.kit.embedded import reserve_port
from openlines.stack.gateway import ROUTES, GatewaySettings, create_gateway_app, resolve

pytestmark = pytest.mark.infra  # runs servers or processes of its own


@dataclass
class Upstream:
    name: str
    url: str = ""
    ws_closes: list[tuple[int | None, str]] = field(default_factory=list)


def _upstream_app(upstream: Upstream) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path.endswith("/conflict"):
            return web.json_response(
                {"error": {"code": "already_taken", "message": "someone else holds it"}},
                status=409,
            )
        if request.path.endswith("/big"):
            response = web.StreamResponse()
            response.content_type = "application/octet-stream"
            await response.prepare(request)
            for _ in range(64):
                await response.write(b"y" * 65536)
            return response
        response = web.json_response(
            {
                "upstream": upstream.name,
                "method": request.method,
                "path": request.raw_path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body_size": len(body),
                "body_head": body[:100].decode(errors="replace"),
            },
            status=201 if request.method == "POST" else 200,
        )
        response.headers["X-Upstream"] = upstream.name
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != "good":
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "no token"}}, status=401
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"hello": request.query.get("token")}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if msg.data == "drop-me":  # no close frame: the TCP connection just ends
                    assert request.transport is not None
                    request.transport.close()
                    break
                if msg.data == "close-me":
                    await ws.close(code=4001, message=b"bye from upstream")
                    break
                await ws.send_str(f"echo:{msg.data}")
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        upstream.ws_closes.append((ws.close_code, ""))
        return ws

    app = web.Application(client_max_size=16 << 20)
    app.router.add_get("/api/v1/stream", stream)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@dataclass
class Setup:
    gateway: str
    a: Upstream
    b: Upstream
    http: aiohttp.ClientSession


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    a, b = Upstream("a"), Upstream("b")
    servers = [TestServer(_upstream_app(a)), TestServer(_upstream_app(b))]
    for server in servers:
        await server.start_server()
    a.url, b.url = (str(s.make_url("")).rstrip("/") for s in servers)
    dead = f"http://127.0.0.1:{reserve_port()}"  # nothing listens there
    settings = GatewaySettings(
        log_json=False,
        gateway_ws_heartbeat_seconds=0.5,  # clients here answer pings (aiohttp's autoping)
        gateway_upstreams={
            "dialogs": a.url,
            "notify": a.url,
            "sandbox": a.url,
            "crm-link": b.url,
            "routing": b.url,
            "analytics": b.url,
            "ingest": dead,
        },
    )
    gateway = TestServer(create_gateway_app(settings))
    await gateway.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Setup(str(gateway.make_url("")).rstrip("/"), a, b, http)
    finally:
        await gateway.close()
        for server in servers:
            await server.close()


async def test_request_reaches_the_upstream_with_forwarding_headers(setup: Setup) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with setup.http.get(
        setup.gateway + "/api/v1/dialogs/d%2F1/timeline?tab=active&q=a%20b&q=c",
        headers={
            "Authorization": "Bearer t0ken",
            "traceparent": traceparent,
            "X-Custom": "kept",
            "X-Request-ID": "req-42",
            "X-Forwarded-For": "10.0.0.9",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "dropped",
        },
    ) as resp:
        seen = await resp.json()
        assert resp.status == 200
        assert resp.headers["X-Upstream"] == "a"
        assert resp.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert resp.headers["X-Request-ID"] == "req-42"
    assert seen["upstream"] == "a"
    assert seen["method"] == "GET"
    assert seen["path"] == "/api/v1/dialogs/d%2F1/timeline?tab=active&q=a%20b&q=c"
    assert seen["query"] == "tab=active&q=a b&q=c"  # as the upstream decodes it
    headers = seen["headers"]
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["traceparent"] == traceparent
    assert headers["X-Custom"] == "kept"
    assert headers["X-Request-ID"] == "req-42"
    assert headers["X-Forwarded-For"] == "10.0.0.9, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] == setup.gateway.removeprefix("http://")
    assert "X-Hop" not in headers
    assert headers["Host"] == setup.a.url.removeprefix("http://")


async def test_request_id_is_made_once_and_shared(setup: Setup) -> None:
    async with setup.http.get(setup.gateway + "/api/v1/queues") as resp:
        seen = await resp.json()
    assert seen["upstream"] == "b"
    assert resp.headers["X-Request-ID"] == seen["headers"]["X-Request-ID"]
    assert len(resp.headers["X-Request-ID"]) >= 16


async def test_bodies_stream_both_ways(setup: Setup) -> None:
    async with setup.http.post(
        setup.gateway + "/api/v1/dialogs/1/messages", json={"text": "hi"}
    ) as resp:
        seen = await resp.json()
    assert resp.status == 201
    assert seen["body_head"] == '{"text": "hi"}'
    assert seen["headers"]["Content-Type"] == "application/json"

    # Larger than the gateway's own body limit (1 MiB), sent chunked: it is streamed, not read.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(48):
            yield b"x" * 65536

    async with setup.http.put(setup.gateway + "/sandbox/tg/upload", data=chunks()) as resp:
        seen = await resp.json()
    assert resp.status == 200
    assert seen["body_size"] == 48 * 65536
    async with setup.http.get(setup.gateway + "/sandbox/tg/big") as resp:
        assert resp.status == 200
        assert len(await resp.read()) == 64 * 65536


async def test_head_and_empty_bodies(setup: Setup) -> None:
    async with setup.http.head(setup.gateway + "/api/v1/dialogs") as resp:
        assert resp.status == 200
        assert await resp.read() == b""
    async with setup.http.delete(setup.gateway + "/api/v1/dialogs/1") as resp:
        assert (await resp.json())["body_size"] == 0


async def test_upstream_errors_pass_through(setup: Setup) -> None:
    async with setup.http.post(setup.gateway + "/api/v1/dialogs/1/conflict") as resp:
        assert resp.status == 409
        assert await resp.json() == {
            "error": {"code": "already_taken", "message": "someone else holds it"}
        }


@pytest.mark.parametrize(
    ("method", "path", "upstream"),
    [
        ("POST", "/api/v1/dialogs/9f1c/lead", "b"),  # crm-link owns the dialog's lead
        ("GET", "/api/v1/dialogs/9f1c", "a"),
        ("GET", "/api/v1/dialogs", "a"),
        ("PATCH", "/api/v1/quick-replies/7", "a"),  # dialogs holds the quick replies
        ("PUT", "/api/v1/operators/ann/presence", "b"),
        ("GET", "/api/v1/queues", "b"),
        ("GET", "/api/v1/crm/leads/1", "b"),
        ("POST", "/api/v1/webhooks", "a"),
        ("GET", "/sandbox/tg-demo/sent", "a"),
        ("GET", "/api/v1/reports/summary?group_by=line", "b"),  # analytics
        ("GET", "/api/v1/reports/dialogs.csv", "b"),
    ],
)
async def test_routes_follow_the_ingress_paths(
    setup: Setup, method: str, path: str, upstream: str
) -> None:
    async with setup.http.request(method, setup.gateway + path) as resp:
        seen = await resp.json()
    assert seen["upstream"] == upstream
    assert seen["path"] == path


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v1/dialogsx",
        "/api/v1/quick-repliesx",
        "/api/v1/reportsx",
        "/api/v2/dialogs",
        "/nothing/here",
    ],
)
async def test_no_route_is_404(setup: Setup, path: str) -> None:
    async with setup.http.get(setup.gateway + path) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


def test_route_table_is_matched_by_whole_segments() -> None:
    assert resolve(ROUTES, "/webhooks/telegram/tg-demo") == "ingest"
    assert resolve(ROUTES, "/webhooks") == "ingest"
    assert resolve(ROUTES, "/webhooksx") is None
    assert resolve(ROUTES, "/api/v1/dialogs/1/lead") == "crm-link"
    assert resolve(ROUTES, "/api/v1/dialogs/1/lead/x") == "dialogs"
    assert resolve(ROUTES, "/api/v1/stream") == "notify"
    assert resolve(ROUTES, "/api/v1/reports/summary") == "analytics"
    assert resolve(ROUTES, "/api/v1/reportsx") is None
    # Dot segments would reach the upstream as another path than the one routed.
    assert resolve(ROUTES, "/sandbox/../api/v1/dialogs") is None
    assert resolve(ROUTES, "/api/v1/dialogs/./1") is None


async def test_upstream_down_is_502_and_the_gateway_keeps_serving(setup: Setup) -> None:
    async with setup.http.post(setup.gateway + "/webhooks/telegram/tg-demo", json={}) as resp:
        body = await resp.json()
    assert resp.status == 502
    assert body["error"]["code"] == "upstream_unavailable"
    assert body["error"]["details"] == {"upstream": "ingest"}
    async with setup.http.get(setup.gateway + "/healthz") as resp:
        assert resp.status == 200
    async with setup.http.get(setup.gateway + "/api/v1/queues") as resp:
        assert resp.status == 200


async def test_websocket_is_relayed_both_ways_with_close_codes(setup: Setup) -> None:
    async with setup.http.ws_connect(setup.gateway + "/api/v1/stream?token=good") as ws:
        assert json.loads((await ws.receive()).data) == {"hello": "good"}
        await ws.send_str("ping")
        assert (await ws.receive()).data == "echo:ping"
        await ws.send_bytes(b"\x01\x02\x03")
        assert (await ws.receive()).data == b"\x03\x02\x01"
        await ws.send_str("close-me")
        closing = await ws.receive()
        assert closing.type == WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (4001, "bye from upstream")

    # The client closes: the upstream sees the client's code.
    async with setup.http.ws_connect(setup.gateway + "/api/v1/stream?token=good") as ws:
        await ws.receive()
        await ws.close(code=4002, message=b"client done")
    async with asyncio.timeout(10):
        while not setup.a.ws_closes or setup.a.ws_closes[-1][0] != 4002:
            await asyncio.sleep(0.05)


async def test_a_websocket_client_that_stops_answering_pings_is_dropped(setup: Setup) -> None:
    # A client gone without a FIN (a closed laptop lid) must not keep the relay and the
    # upstream session alive: the gateway pings it, gets no pong and ends both.
    before = len(setup.a.ws_closes)
    async with setup.http.ws_connect(
        setup.gateway + "/api/v1/stream?token=good", autoping=False
    ) as ws:
        await ws.receive()  # hello
        async with asyncio.timeout(10):
            assert (await ws.receive()).type == WSMsgType.PING  # never answered
            while len(setup.a.ws_closes) == before:
                await asyncio.sleep(0.05)


async def test_websocket_upstream_dropping_the_connection_is_1011(setup: Setup) -> None:
    async with setup.http.ws_connect(setup.gateway + "/api/v1/stream?token=good") as ws:
        await ws.receive()
        await ws.send_str("drop-me")
        async with asyncio.timeout(10):
            closing = await ws.receive()
        assert closing.type == WSMsgType.CLOSE
        assert closing.data == 1011


async def test_websocket_refused_by_upstream_keeps_its_status(setup: Setup) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await setup.http.ws_connect(setup.gateway + "/api/v1/stream?token=bad")
    assert refused.value.status == 401


async def test_websocket_to_a_dead_upstream_is_502(setup: Setup) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await setup.http.ws_connect(setup.gateway + "/webhooks/ws")
    assert refused.value.status == 502


async def test_gateway_process_reads_upstreams_from_env(setup: Setup) -> None:
    port = reserve_port()
    env = {
        **os.environ,
        "OPENLINES_HTTP_PORT": str(port),
        "OPENLINES_GATEWAY_UPSTREAMS": json.dumps({"dialogs": setup.b.url}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openlines.stack.gateway_main",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    async with setup.http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        async with setup.http.get(base + "/api/v1/dialogs") as resp:
            assert (await resp.json())["upstream"] == "b"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_no_server_header_even_when_the_upstream_sends_one(setup: Setup) -> None:
    # The upstreams here are bare aiohttp apps: they announce `Server: Python/... aiohttp/...`.
    for path in ("/api/v1/dialogs/x", "/healthz", "/nowhere-routed"):
        async with setup.http.get(setup.gateway + path) as resp:
            assert "Server" not in resp.headers, (path, resp.headers)


async def test_the_gateway_serves_the_openapi_document(setup: Setup) -> None:
    async with setup.http.get(
        setup.gateway + "/api/v1/openapi.json", timeout=aiohttp.ClientTimeout(total=120)
    ) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert {"/api/v1/dialogs", "/webhooks/{channel_type}/{channel_id}", "/api/v1/stream"} <= set(
        doc["paths"]
    )
