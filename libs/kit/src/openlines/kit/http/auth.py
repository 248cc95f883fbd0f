"""JWT bearer auth yielding an operator principal with roles.

HS256 with a dev secret by default; RS256 (or any asymmetric algorithm) verified against a
JWKS URL by config. The token's `sub` is the operator id; `roles` a list; `lines` optional.

A token must expire within `jwt_max_lifetime_seconds` of its issue (`token_lifetime_too_long`
otherwise), and comes in the Authorization header. Only a route that opts in (the WebSocket
stream: browsers cannot set headers there) also takes `?token=`; anywhere else a query token
is refused (`query_token_not_allowed`), since URLs end up in logs, histories and Referer headers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from openlines.kit.http.errors import ApiError
from openlines.kit.settings import KitSettings

ROLES = ("operator", "supervisor", "admin")


@dataclass(frozen=True)
class Principal:
    operator_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    lines: frozenset[str] | None = None  # None: not restricted by the token
    expires_at: float | None = None
    """The token's `exp` (Unix seconds): long-lived connections end there."""

    @property
    def is_supervisor(self) -> bool:
        # A chat admin sees everything, like a supervisor (DESIGN §9, Uspacy permissions).
        return bool(self.roles & {"supervisor", "admin"})


class Authenticator:
    def __init__(self, settings: KitSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None

    async def principal(self, request: web.Request, *, query_token: bool = False) -> Principal:
        token = bearer_token(request)
        if token is None and "token" in request.query:
            if not query_token:
                raise ApiError(
                    401,
                    "query_token_not_allowed",
                    "?token= is accepted on the WebSocket stream only: "
                    "send Authorization: Bearer <token>",
                )
            token = request.query["token"] or None
        if token is None:
            raise ApiError(401, "unauthorized", "missing bearer token")
        return await self.decode(token)

    async def decode(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                # PyJWKClient fetches (and caches) keys with blocking I/O.
                key: Any = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                key = self.settings.jwt_secret
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp"], "verify_aud": bool(self.settings.jwt_audience)},
            )
        except jwt.PyJWTError as exc:
            raise ApiError(401, "invalid_token", f"invalid token: {exc}") from exc
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ApiError(401, "invalid_token", "roles claim must be a list of strings")
        lines = claims.get("lines")
        if lines is not None and (
            not isinstance(lines, list) or not all(isinstance(line, str) for line in lines)
        ):
            raise ApiError(401, "invalid_token", "lines claim must be a list of strings")
        self._check_lifetime(claims)
        return Principal(
            operator_id=str(claims["sub"]),
            roles=frozenset(roles),
            lines=frozenset(lines) if lines is not None else None,
            expires_at=float(claims["exp"]),
        )

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A leaked long-lived token stays usable for long: refuse those beyond the maximum.
        Without `iat`, what is left of it counts (it may have been issued any time)."""
        issued = claims.get("iat")
        start = float(issued) if isinstance(issued, int | float) else time.time()
        lifetime = float(claims["exp"]) - start
        limit = self.settings.jwt_max_lifetime_seconds
        if lifetime > limit:
            raise ApiError(
                401,
                "token_lifetime_too_long",
                f"token lifetime {int(lifetime)} s exceeds the maximum of {limit} s",
            )


def bearer_token(request: web.Request) -> str | None:
    """The token of the Authorization header (never the query: see `principal`)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def issue_token(
    operator_id: str,
    roles: list[str],
    *,
    secret: str,
    ttl_seconds: int = 12 * 3600,
    lines: list[str] | None = None,
    algorithm: str = "HS256",
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": operator_id,
        "roles": roles,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if lines is not None:
        claims["lines"] = lines
    return jwt.encode(claims, secret, algorithm=algorithm)


PRINCIPAL_KEY = web.AppKey("authenticator", Authenticator)


async def require_principal(request: web.Request, *, query_token: bool = False) -> Principal:
    """The caller; `query_token=True` only for WebSocket upgrades (see the module doc)."""
    return await request.app[PRINCIPAL_KEY].principal(request, query_token=query_token)
