"""The OpenAPI 3.1 document, generated from the route declarations (`routes.py`).

Nothing here is written by hand beside the handlers: paths, parameters, bodies and answers come
from the same pydantic models the handlers are given, through pydantic's JSON Schema (OpenAPI
3.1 uses JSON Schema 2020-12 as it is).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from openlines.kit.http.routes import Operation

REF_TEMPLATE = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, stable: e.g. invalid_body, not_found")
    message: str = Field(description="for humans; may change")
    details: dict[str, Any] | None = Field(
        default=None, description="more facts for some codes (e.g. `errors` of invalid_body)"
    )


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the suite."""

    error: ErrorDetail


# What the route mechanism and the kit's middleware may answer besides the handler's own.
_BODY_ERRORS = {
    400: "malformed_json: the body is not JSON; client_disconnected",
    408: "body_timeout: the body did not arrive in time",
    413: "payload_too_large",
    422: "invalid_body: the body does not fit the model (unknown field, wrong type...)",
}
_QUERY_ERRORS = {400: "invalid_query: unknown parameter, bad value, repeated, or NUL"}
_AUTH_ERRORS = {401: "unauthorized / invalid_token"}
# Any route may meet a database or broker outage (kit http: 503 with Retry-After).
_OUTAGE_ERRORS = {503: "unavailable: Postgres or Kafka is unavailable, retry (Retry-After)"}


def document(
    sections: Iterable[tuple[str, Sequence[Operation]]],
    *,
    title: str,
    version: str,
    description: str = "",
) -> dict[str, Any]:
    """One OpenAPI document over the operations of several services (sections become tags)."""
    tagged = [(section, op) for section, ops in sections for op in ops if op.path and op.method]
    models = _models(op for _, op in tagged)
    refs, schemas = models_json_schema(models, ref_template=REF_TEMPLATE)
    defs: dict[str, Any] = schemas.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for section, op in tagged:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(section, op, refs, defs)
    components: dict[str, Any] = {
        "schemas": dict(sorted(defs.items())),
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "webhookSecret": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Telegram-Bot-Api-Secret-Token",
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": components,
    }


def _models(ops: Iterable[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for op in ops:
        for model in (op.body, op.query):
            if model is not None:
                found[(model, "validation")] = None
        for spec in op.responses.values():
            if isinstance(spec, type):
                found[(spec, "serialization")] = None
    return list(found)


def _operation(
    section: str, op: Operation, refs: dict[Any, Any], defs: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": f"{section}.{op.name}".replace("-", "_"),
        "summary": op.summary,
        "tags": list(op.tags or (section,)),
    }
    if op.description:
        out["description"] = op.description
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    if op.query is not None:
        parameters.extend(_query_parameters(refs[(op.query, "validation")], defs))
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        schema = refs[(op.body, "validation")]
        required = bool(_resolve(schema, defs).get("required"))
        out["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    out["responses"] = _responses(op, refs)
    if op.auth == "bearer":
        out["security"] = [{"bearer": []}]
    elif op.auth == "webhook_secret":
        out["security"] = [{"webhookSecret": []}]
    return out


def _query_parameters(ref: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(ref, defs)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
        }
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return dict(defs[ref.rsplit("/", 1)[1]])


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    error_ref = refs[(ErrorBody, "serialization")]
    implied: dict[int, str] = {}
    if op.auth == "bearer":
        implied.update(_AUTH_ERRORS)
    implied.update(_QUERY_ERRORS)  # every route refuses the parameters it does not declare
    implied.update(_OUTAGE_ERRORS)
    if op.body is not None or op.method in ("POST", "PUT", "PATCH", "DELETE"):
        for status, text in _BODY_ERRORS.items():
            implied[status] = f"{implied[status]}; {text}" if status in implied else text
    answers: dict[str, Any] = {}
    for status, spec in sorted({**implied, **op.responses}.items()):
        if status in implied and status in op.responses and isinstance(spec, str):
            spec = f"{spec}; {implied[status]}"
        answers[str(status)] = _response(status, spec, op, refs, error_ref)
        if op.links and 200 <= status < 300:
            answers[str(status)]["links"] = {
                name: {"operationId": target, "parameters": dict(parameters)}
                for name, (target, parameters) in op.links.items()
            }
    return answers


def _response(
    status: int, spec: Any, op: Operation, refs: dict[Any, Any], error_ref: dict[str, Any]
) -> dict[str, Any]:
    if status >= 400:
        text = spec if isinstance(spec, str) else "error"
        return {
            "description": text,
            "content": {"application/json": {"schema": error_ref}},
        }
    if isinstance(spec, type):
        return {
            "description": (spec.__doc__ or spec.__name__).strip().splitlines()[0],
            "content": {op.content_type: {"schema": refs[(spec, "serialization")]}},
        }
    if spec is None:
        return {"description": "no body"}
    if op.content_type != "application/json":
        return {"description": spec, "content": {op.content_type: {"schema": {"type": "string"}}}}
    return {"description": spec}
