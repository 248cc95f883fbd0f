"""The local gateway: one base URL for the whole suite, path-routed like the Kubernetes Ingress.

A plain reverse proxy: method, path, query, headers (minus hop-by-hop) and a streamed body go
to the upstream; its status, headers and streamed body come back. WebSockets are relayed both
ways, close codes included. It adds X-Forwarded-For/-Proto/-Host and X-Request-ID and leaves
`traceparent` as the client sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from prometheus_client import Counter
from yarl import URL

from openlines.kit.http import routes
from openlines.kit.http.app import create_app, current_request_id
from openlines.kit.http.errors import HTTP_CODES, error_response
from openlines.kit.log import get_logger
from openlines.kit.settings import KitSettings
from openlines.stack.contract import DocumentApi

log = get_logger(__name__)

PROXIED = Counter(
    "openlines_gateway_requests_total", "Requests proxied, by upstream", ["upstream", "status"]
)

DEFAULT_UPSTREAMS: Mapping[str, str] = {
    "ingest": "http://127.0.0.1:8101",
    "dialogs": "http://127.0.0.1:8102",
    "routing": "http://127.0.0.1:8103",
    "crm-link": "http://127.0.0.1:8104",
    "notify": "http://127.0.0.1:8106",
    "analytics": "http://127.0.0.1:8107",
    "sandbox": "http://127.0.0.1:8090",
}


@dataclass(frozen=True)
class Route:
    """Requests whose path matches `pattern` go to `upstream` (first match wins)."""

    pattern: re.Pattern[str]
    upstream: str


def _prefix(path: str) -> re.Pattern[str]:
    # Whole segments only: /api/v1/dialogs matches /api/v1/dialogs/1, not /api/v1/dialogsx.
    return re.compile(re.escape(path.rstrip("/")) + r"(/.*)?")


# The same paths as the Ingress (deploy/k8s). Ingress routes by path only, so this does too.
ROUTES: tuple[Route, ...] = (
    Route(re.compile(r"/api/v1/dialogs/[^/]+/lead/?"), "crm-link"),
    Route(re.compile(r"/api/v1/dialogs/[^/]+/deal/?"), "crm-link"),
    Route(_prefix("/webhooks"), "ingest"),
    Route(_prefix("/api/v1/dialogs"), "dialogs"),
    Route(_prefix("/api/v1/quick-replies"), "dialogs"),
    Route(_prefix("/api/v1/counters"), "dialogs"),
    Route(_prefix("/api/v1/operators"), "routing"),
    Route(_prefix("/api/v1/queues"), "routing"),
    Route(_prefix("/api/v1/crm"), "crm-link"),
    Route(_prefix("/api/v1/stream"), "notify"),
    Route(_prefix("/api/v1/webhooks"), "notify"),
    Route(_prefix("/api/v1/reports"), "analytics"),
    Route(_prefix("/sandbox"), "sandbox"),
    # The website widget: the visitor socket is notify's, the script and endpoints ingest's.
    Route(re.compile(r"/widget/[^/]+/socket/?"), "notify"),
    Route(_prefix("/widget"), "ingest"),
)

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
    )
)
# Set by each side of a WebSocket handshake itself.
WEBSOCKET_HANDSHAKE = frozenset(
    h.lower()
    for h in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
    )
)
# Close codes that must never be sent in a close frame (RFC 6455 §7.4.1).
_RESERVED_CLOSE_CODES = frozenset({1005, 1006, 1015})


class GatewaySettings(KitSettings):
    service_name: str = "gateway"
    http_port: int = 8080
    # JSON object merged over DEFAULT_UPSTREAMS, e.g. {"dialogs": "http://10.0.0.5:8102"}.
    gateway_upstreams: dict[str, str] = {}
    gateway_connect_timeout: float = 5.0
    # Between two reads from the upstream; generous for long polls, never for WebSockets.
    gateway_read_timeout: float = 300.0
    # Pings towards WebSocket clients: one that vanished without a FIN (a laptop lid closed)
    # is dropped, and with it the relay and the upstream session, instead of lingering.
    gateway_ws_heartbeat_seconds: float = 30.0


def resolve(routes: tuple[Route, ...], path: str) -> str | None:
    if "/../" in path or path.endswith("/..") or "/./" in path:
        return None  # the upstream would see another path than the one routed here
    return next((r.upstream for r in routes if r.pattern.fullmatch(path)), None)


class Gateway:
    def __init__(self, settings: GatewaySettings, routes: tuple[Route, ...] = ROUTES) -> None:
        self.settings = settings
        self.routes = routes
        self.upstreams = {**DEFAULT_UPSTREAMS, **settings.gateway_upstreams}
        unknown = {r.upstream for r in routes} - set(self.upstreams)
        if unknown:
            raise ValueError(f"routes name upstreams without a URL: {sorted(unknown)}")
        self._session: aiohttp.ClientSession | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.document = DocumentApi()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "gateway not started"
        return self._session

    def install(self, app: web.Application) -> None:
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        routes.install(app, self.document)  # its own route, before the catch-all proxy
        app.router.add_route("*", "/{tail:.*}", self.handle)

    async def _start(self, _: web.Application) -> None:
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.settings.gateway_connect_timeout,
            sock_read=self.settings.gateway_read_timeout,
        )
        # auto_decompress off: bodies pass through byte for byte, Content-Encoding and all.
        self._session = aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def _stop(self, _: web.Application) -> None:
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = resolve(self.routes, request.path)
        if name is None:
            return error_response(404, "not_found", f"no route for {request.path}")
        target = URL(self.upstreams[name].rstrip("/") + request.raw_path, encoded=True)
        headers = self._forward_headers(request)
        if _is_websocket(request):
            return await self._websocket(request, name, target, headers)
        return await self._http(request, name, target, headers)

    def _forward_headers(self, request: web.Request) -> CIMultiDict[str]:
        named_by_connection = {
            h.strip().lower() for h in request.headers.get("Connection", "").split(",")
        }
        headers = CIMultiDict(
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in named_by_connection
        )
        peer = request.remote or ""
        previous = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        headers["X-Request-ID"] = request_id(request)
        return headers

    async def _http(
        self, request: web.Request, name: str, target: URL, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        body = request.content if request.body_exists else None
        try:
            upstream = await self.session.request(
                request.method,
                target,
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except TimeoutError:
            return self._failed(name, 504, "upstream_timeout", f"{name} did not answer in time")
        except aiohttp.ClientError as exc:
            log.warning("upstream unavailable", upstream=name, error=repr(exc))
            return self._failed(name, 502, "upstream_unavailable", f"{name} is unavailable")
        async with upstream:
            PROXIED.labels(name, str(upstream.status)).inc()
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            response.headers["X-Request-ID"] = headers["X-Request-ID"]
            if "Content-Length" in response.headers:
                response.content_length = int(response.headers["Content-Length"])
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Headers are gone already: all that is left is to cut the connection.
                log.warning("upstream broke off mid-body", upstream=name, error=repr(exc))
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write_eof()
            return response

    async def _websocket(
        self, request: web.Request, name: str, target: URL, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        for key in [k for k in headers if k.lower() in WEBSOCKET_HANDSHAKE]:
            del headers[key]
        protocols = tuple(
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        )
        try:
            upstream = await self.session.ws_connect(
                target, headers=headers, protocols=protocols, autoping=True, timeout=_ws_timeout()
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The upstream refused (401 without a token...): the client gets the same status.
            PROXIED.labels(name, str(exc.status)).inc()
            code = HTTP_CODES.get(exc.status, "upstream_refused")
            return error_response(exc.status, code, f"{name} refused the WebSocket: {exc.message}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("upstream unavailable", upstream=name, error=repr(exc))
            return self._failed(name, 502, "upstream_unavailable", f"{name} is unavailable")
        PROXIED.labels(name, "101").inc()
        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoping=True,
            heartbeat=self.settings.gateway_ws_heartbeat_seconds,
        )
        try:
            await client.prepare(request)
        except BaseException:
            await upstream.close(code=WSCloseCode.GOING_AWAY)
            raise
        # aiohttp cancels the handler when the client's connection drops: the relay runs in
        # its own task so that the close still reaches the upstream.
        relay = asyncio.create_task(_relay(client, upstream))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        await asyncio.shield(relay)
        return client

    def _failed(self, name: str, status: int, code: str, message: str) -> web.Response:
        PROXIED.labels(name, str(status)).inc()
        return error_response(status, code, message, upstream=name)


def _ws_timeout() -> aiohttp.ClientWSTimeout:
    return aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)


WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


@dataclass(frozen=True)
class Closed:
    """How one side of a relayed WebSocket ended."""

    side: WebSocket
    code: int | None
    reason: str


async def _relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async with upstream:
        to_upstream = asyncio.create_task(_pump(client, upstream))
        to_client = asyncio.create_task(_pump(upstream, client))
        try:
            done, _ = await asyncio.wait(
                {to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (to_upstream, to_client):
                task.cancel()
            await asyncio.gather(to_upstream, to_client, return_exceptions=True)
        # Whoever closed first: the other side gets the same code and reason.
        closed = done.pop().result()
        await _close_with(upstream if closed.side is client else client, closed)


async def _pump(source: WebSocket, sink: WebSocket) -> Closed:
    """Relay messages from `source` to `sink` until either side is gone."""
    while True:
        message = await source.receive()
        try:
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
        except (ConnectionError, RuntimeError):
            return Closed(sink, sink.close_code, "")
        if message.type == WSMsgType.CLOSE:
            return Closed(source, source.close_code, message.extra or "")
        if message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return Closed(source, source.close_code, "")


async def _close_with(sink: WebSocket, closed: Closed) -> None:
    code, reason = closed.code, closed.reason
    if code is None or code in _RESERVED_CLOSE_CODES:
        code, reason = WSCloseCode.INTERNAL_ERROR, "peer went away without a close frame"
    with contextlib.suppress(ConnectionError, RuntimeError):
        await sink.close(code=code, message=reason.encode())


def _is_websocket(request: web.Request) -> bool:
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


def request_id(request: web.Request) -> str:
    """The id the kit's request-id middleware bound for this request (or the client's)."""
    return current_request_id() or request.headers.get("X-Request-ID") or uuid.uuid4().hex


def create_gateway_app(settings: GatewaySettings | None = None) -> web.Application:
    settings = settings or GatewaySettings()
    app = create_app(settings)  # its own /healthz, /readyz, /metrics come first
    Gateway(settings).install(app)
    return app
