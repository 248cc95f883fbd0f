"""Visitor tokens: what a website visitor's browser holds instead of any secret.

A token names one conversation of one widget channel (`channel_id:visitor_id`) and nothing
else: ingest takes the visitor's messages and receipts with it, notify opens the visitor's
socket with it. It is a JWT (HS256, PyJWT) signed with a key *derived* from the channel's HMAC
secret, so the secret itself never reaches a browser, a leaked token opens one conversation
only, and operator tokens (another key, no `aud`) and visitor tokens never stand in for each
other. Visitor ids are chosen by the server (random), so nobody can ask for a token to someone
else's conversation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import jwt

from openlines.events.lines import Channel

AUDIENCE = "openlines-widget"
_KEY_LABEL = b"openlines widget visitor token v1"
# What a visitor id may be: the conversation key's second half, safe in URLs and logs.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")


class InvalidVisitorToken(ValueError):
    """Not a token of this channel, expired, or tampered with."""


@dataclass(frozen=True)
class Visitor:
    channel_id: str
    visitor_id: str
    expires_at: float

    @property
    def conversation_key(self) -> str:
        return f"{self.channel_id}:{self.visitor_id}"


def token_key(channel: Channel) -> bytes:
    # HMAC as a key-derivation step: the derived key reveals nothing of the secret.
    return hmac.new(channel.secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def new_visitor_id() -> str:
    return "v-" + secrets.token_urlsafe(18)


def issue(
    channel: Channel, visitor_id: str, ttl_seconds: int, *, now: float | None = None
) -> tuple[str, Visitor]:
    if not channel.secret:
        raise InvalidVisitorToken(f"channel {channel.id} has no secret to sign tokens with")
    issued = int(time.time() if now is None else now)
    expires = issued + ttl_seconds
    claims = {
        "aud": AUDIENCE,
        "ch": channel.id,
        "sub": visitor_id,
        "iat": issued,
        "exp": expires,
    }
    token = jwt.encode(claims, token_key(channel), algorithm="HS256")
    return token, Visitor(channel.id, visitor_id, float(expires))


def verify(channel: Channel, token: str, *, now: float | None = None) -> Visitor:
    """The visitor a token names, when it is a live token of `channel`."""
    if not channel.secret:
        raise InvalidVisitorToken(f"channel {channel.id} has no secret")
    try:
        claims = jwt.decode(
            token,
            token_key(channel),
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["sub", "exp", "ch", "aud"], "verify_iat": False},
            leeway=0,
        )
        if now is not None and float(claims["exp"]) <= now:
            raise jwt.ExpiredSignatureError("token expired")
    except jwt.PyJWTError as exc:
        raise InvalidVisitorToken(str(exc)) from None
    visitor_id = claims["sub"]
    if claims["ch"] != channel.id or not isinstance(visitor_id, str):
        raise InvalidVisitorToken("token of another channel")
    if not VISITOR_ID.match(visitor_id):
        raise InvalidVisitorToken("malformed visitor id")
    return Visitor(channel.id, visitor_id, float(claims["exp"]))
