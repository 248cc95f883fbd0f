"""Route declarations: one decorator says what a route takes and answers.

    @routes.post("/api/v1/dialogs/{id}/messages", body=ReplyBody,
                 responses={202: ReplyAccepted, 404: "no such dialog", 409: "dialog closed"})
    async def send_message(self, request: web.Request, *, body: ReplyBody) -> web.Response: ...

The same declaration installs the aiohttp route (the handler receives validated models as the
keyword arguments `body` and `query`) and feeds the OpenAPI document (`openapi.py`), so what is
validated and what is documented cannot drift apart.

The rules, the same in every service:
- a body that is not JSON: 400 `malformed_json`; JSON that does not fit the body model (unknown
  field, wrong type, missing field): 422 `invalid_body`; a route without a body model takes no
  body (an empty one or `{}`), anything else is 422 `invalid_body` too;
- a query string that does not fit the query model (unknown parameter, a bad value, a parameter
  given twice, a NUL): 400 `invalid_query`; a route without a query model takes no parameters;
- body models are strict (`StrictModel`): no coercion ("1" is not 1), unknown fields refused;
  query values are strings on the wire, so query models convert them ("50" is 50) but refuse
  unknown parameters all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, TypeVar

import pydantic_core
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from openlines.kit.http.errors import ApiError
from openlines.kit.log import get_logger

log = get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[web.StreamResponse]])

Auth = Literal["bearer", "webhook_secret", "none"]
ResponseSpec = type[BaseModel] | str | None
"""A JSON body model, a description (an error, or a non-JSON body), or None (no body)."""

BODY_TIMEOUT_KEY = web.AppKey("body_timeout_seconds", float)
DEFAULT_BODY_TIMEOUT = 30.0


class StrictModel(BaseModel):
    """A request body: unknown fields refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class QueryModel(BaseModel):
    """A query string: unknown parameters refused; values converted from their text."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    name: str
    """The handler's attribute name on its owner (a class or a module)."""
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: Mapping[int, ResponseSpec] = field(default_factory=dict)
    auth: Auth = "bearer"
    websocket: bool = False
    tags: tuple[str, ...] = ()
    description: str | None = None
    content_type: str = "application/json"
    """Of the success bodies (text/plain for metrics)."""
    links: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    """OpenAPI links of the success answer: name -> (operationId, {parameter: expression}),
    e.g. {"GetDialog": ("dialogs.get_dialog", {"id": "$response.body#/items/0/id"})}."""
    body_read_by_handler: bool = False
    """The handler reads the body itself (a provider's webhook: it verifies the raw bytes and
    maps the provider's format); `body` then only documents it."""

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{([^}:]+)", self.path)


_ATTR = "__openlines_operation__"


def _declare(method: str) -> Callable[..., Callable[[F], F]]:
    def verb(
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: Mapping[int, ResponseSpec],
        auth: Auth = "bearer",
        websocket: bool = False,
        tags: tuple[str, ...] = (),
        description: str | None = None,
        content_type: str = "application/json",
        body_read_by_handler: bool = False,
        links: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
    ) -> Callable[[F], F]:
        def mark(handler: F) -> F:
            operation = Operation(
                method=method,
                path=path,
                name=handler.__name__,
                summary=summary,
                body=body,
                query=query,
                responses=dict(responses),
                auth=auth,
                websocket=websocket,
                tags=tags,
                description=description or (handler.__doc__ or "").strip() or None,
                content_type=content_type,
                body_read_by_handler=body_read_by_handler,
                links=dict(links or {}),
            )
            setattr(handler, _ATTR, operation)
            return handler

        return mark

    return verb


get = _declare("GET")
post = _declare("POST")
put = _declare("PUT")
patch = _declare("PATCH")
delete = _declare("DELETE")


def operations(owner: type | ModuleType | object) -> list[Operation]:
    """The operations declared on a class or module (or an instance's class), in the order
    they are written."""
    scope = owner if isinstance(owner, type | ModuleType) else type(owner)
    found = [
        getattr(value, _ATTR)
        for klass in _mro(scope)
        for value in vars(klass).values()
        if hasattr(value, _ATTR)
    ]
    return found


def _mro(scope: type | ModuleType) -> Iterable[Any]:
    return (scope,) if isinstance(scope, ModuleType) else reversed(scope.__mro__)


def install(app: web.Application, owner: object) -> list[Operation]:
    """Add every operation declared on `owner` (an instance or a module) to `app`."""
    declared = operations(owner)
    for op in declared:
        handler = getattr(owner, op.name)
        if op.method == "GET":  # and HEAD, as aiohttp's add_get always gave
            app.router.add_get(op.path, _endpoint(op, handler))
        else:
            app.router.add_route(op.method, op.path, _endpoint(op, handler))
    return declared


def _endpoint(
    op: Operation, handler: Callable[..., Awaitable[web.StreamResponse]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        inputs: dict[str, Any] = {}
        query = parse_query(request, op.query)
        if op.query is not None:
            inputs["query"] = query
        if op.body_read_by_handler:
            pass
        elif op.body is not None:
            inputs["body"] = await parse_body(request, op.body)
        elif op.method in ("POST", "PUT", "PATCH", "DELETE"):
            await _refuse_body(request)
        return await handler(request, **inputs)

    endpoint.__name__ = op.name
    return endpoint


# -- query ------------------------------------------------------------------------------------


def parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    params = request.query
    if model is None:
        if params:
            raise ApiError(
                400,
                "invalid_query",
                f"this operation takes no query parameters (got {', '.join(sorted(params))})",
            )
        return None
    data: dict[str, str] = {}
    for key in params:
        values = params.getall(key)
        if len(values) > 1:
            raise ApiError(400, "invalid_query", f"{key}: given more than once")
        if "\x00" in key or "\x00" in values[0]:
            raise ApiError(400, "invalid_query", "query parameters must not contain NUL (U+0000)")
        data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_query", _first(exc), errors=_errors(exc)) from None


# -- body -------------------------------------------------------------------------------------


async def read_json(request: web.Request, *, nul: Literal["reject", "strip"] = "reject") -> object:
    """The request body as JSON, with clear 4xx errors for what clients get wrong.

    Postgres text cannot hold U+0000, so a string carrying it would fail deep inside a write:
    by default it is refused here (400 ``invalid_text``); ``nul="strip"`` removes it instead,
    for providers whose webhooks must not be refused (they would retry them forever).
    """
    if request.content_length is not None and request.content_length > request.app._client_max_size:
        raise ApiError(
            413, "payload_too_large", f"body exceeds {request.app._client_max_size} bytes"
        )
    try:
        raw = await request.read()
        # pydantic-core parses bytes directly: a third of json.loads' cost on small bodies.
        data = pydantic_core.from_json(raw, allow_inf_nan=False)
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", "body too large") from exc
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if b"\\u0000" not in raw:  # JSON can only carry NUL escaped: the common case costs a scan
        return data
    if nul == "strip":
        return without_nul(data)
    if without_nul(data) != data:
        raise ApiError(400, "invalid_text", "strings must not contain the NUL character (U+0000)")
    return data


def without_nul(data: object) -> object:
    """`data` with every U+0000 removed from its strings (keys included)."""
    if isinstance(data, str):
        return data.replace("\x00", "")
    if isinstance(data, list):
        return [without_nul(item) for item in data]
    if isinstance(data, dict):
        return {str(without_nul(k)): without_nul(v) for k, v in data.items()}
    return data


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """The body validated by `model`, strictly. An empty body counts as `{}`: a model without
    required fields makes the body optional."""
    raw = b""
    if request.body_exists:
        async with body_deadline(request):
            # read_json owns the size limit and the NUL rule; the bytes it read stay cached.
            await read_json(request)
            raw = await request.read()
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}", strict=True)
    except ValidationError as exc:
        raise ApiError(422, "invalid_body", _first(exc), errors=_errors(exc)) from None


async def _refuse_body(request: web.Request) -> None:
    if not request.body_exists:
        return
    async with body_deadline(request):
        raw = await request.read()
    if raw.strip() not in (b"", b"{}"):
        raise ApiError(422, "invalid_body", "this operation takes no body")


class ClientGone(ApiError):
    """The client closed the connection before its body arrived: nobody reads the answer."""

    def __init__(self) -> None:
        super().__init__(400, "client_disconnected", "the client disconnected mid-body")


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the time a body may take to arrive (a slow client holds a connection and a
    buffer); a client that disconnects mid-body is a client event, not a server error."""
    timeout = request.app.get(BODY_TIMEOUT_KEY, DEFAULT_BODY_TIMEOUT)
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        error = ApiError(
            408, "body_timeout", f"the request body did not arrive within {timeout:g} s"
        )
        error.close_connection = True  # the rest of the body may still come: drop it
        raise error from None
    except ConnectionError:
        log.info("client disconnected mid-body", path=request.path)
        raise ClientGone() from None


# -- errors -----------------------------------------------------------------------------------


def _loc(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": _loc(e), "type": e["type"], "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    if error["type"] == "extra_forbidden":
        return f"{_loc(error)}: unknown field"
    return f"{_loc(error)}: {error['msg']}"
