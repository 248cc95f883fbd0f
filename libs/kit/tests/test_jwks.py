"""RS256 tokens verified against a JWKS endpoint (the production configuration)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from openlines.kit.http.auth import Authenticator
from openlines.kit.http.errors import ApiError
from openlines.kit.settings import KitSettings

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})

    async def keys(_: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/.well-known/jwks.json"))
    await server.close()


def rs256(key: rsa.RSAPrivateKey, **claims: object) -> str:
    body = {
        "sub": "ann",
        "roles": ["supervisor"],
        "exp": int(time.time()) + 60,
        "iss": "https://idp.example",
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def test_rs256_token_from_the_jwks_key_is_accepted(jwks_url: str) -> None:
    auth = Authenticator(
        KitSettings(jwt_algorithm="RS256", jwt_jwks_url=jwks_url, jwt_issuer="https://idp.example")
    )
    principal = await auth.decode(rs256(KEY))
    assert principal.operator_id == "ann" and principal.is_supervisor


async def test_wrong_key_wrong_issuer_and_hs256_downgrade_are_rejected(jwks_url: str) -> None:
    auth = Authenticator(
        KitSettings(jwt_algorithm="RS256", jwt_jwks_url=jwks_url, jwt_issuer="https://idp.example")
    )
    forged = rs256(OTHER_KEY)
    wrong_issuer = rs256(KEY, iss="https://evil.example")
    # A token signed with HS256 must not pass as RS256 (algorithm confusion).
    downgrade = jwt.encode(
        {"sub": "ann", "roles": [], "exp": int(time.time()) + 60},
        "x" * 32,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    for token in (forged, wrong_issuer, downgrade):
        with pytest.raises(ApiError) as caught:
            await auth.decode(token)
        assert caught.value.status == 401


def test_a_jwks_with_a_symmetric_algorithm_is_refused_at_start() -> None:
    # A JWKS holds public keys: with HS256 every request would have failed with a 500.
    with pytest.raises(ValidationError, match="asymmetric"):
        KitSettings(jwt_jwks_url="https://idp.example/jwks.json", jwt_algorithm="HS256")
