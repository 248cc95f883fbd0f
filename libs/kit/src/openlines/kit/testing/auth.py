"""Tokens for operators and supervisors, issued by the kit's own auth (dev secret unless told)."""

from __future__ import annotations

from openlines.kit.http.auth import issue_token
from openlines.kit.settings import DEV_JWT_SECRET


def token(
    subject: str,
    role: str = "operator",
    *,
    secret: str = DEV_JWT_SECRET,
    lines: list[str] | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    return issue_token(subject, [role], secret=secret, lines=lines, ttl_seconds=ttl_seconds)


def bearer(
    subject: str,
    role: str = "operator",
    *,
    secret: str = DEV_JWT_SECRET,
    lines: list[str] | None = None,
) -> dict[str, str]:
    """The Authorization header of `subject` with `role`."""
    return {"Authorization": f"Bearer {token(subject, role, secret=secret, lines=lines)}"}
