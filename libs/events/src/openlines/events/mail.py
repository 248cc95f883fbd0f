"""E-mail threading that ingest and outbound share: the Message-ID of an operator's reply.

Ingest has no database, so a customer's answer must name its conversation by itself. Outbound
gives each reply the Message-ID `<{message uuid}.{chat}.{tag}@{channel domain}>`: `chat` is the
conversation's external chat id (the customer's address) in base32, `tag` an HMAC of both under
the channel's secret. The customer's mail client quotes it in `In-Reply-To` / `References`, and
ingest reads the conversation back from it; the tag keeps a stranger from writing into another
customer's dialog by making one up. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from uuid import UUID

from openlines.events.limits import ID_MAX

__all__ = ["MESSAGE_ID_MAX", "conversation_of", "reply_message_id"]

MESSAGE_ID_MAX = ID_MAX
"""A Message-ID is a provider message id in the catalog (MessageDispatched, MessageReceived)."""

_TAG_HEX = 16
_OURS = re.compile(r"^<?([0-9a-f]{32})\.([a-z2-7]+)\.([0-9a-f]{16})@([^<>@\s]+)>?$")


def _tag(secret: str, channel_id: str, chat_id: str, message: str) -> str:
    data = "\x00".join((channel_id, chat_id, message)).encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()[:_TAG_HEX]


def reply_message_id(
    message_id: UUID, *, channel_id: str, chat_id: str, domain: str, secret: str
) -> str:
    """The Message-ID of an operator's reply, `<...>` included. Without a secret, or when the
    chat id would make it too long for the catalog, it carries no conversation (ingest then
    threads the answer by its sender's address, which is the same chat in the usual case)."""
    chat = base64.b32encode(chat_id.encode()).decode().rstrip("=").lower()
    tagged = (
        f"<{message_id.hex}.{chat}.{_tag(secret, channel_id, chat_id, message_id.hex)}@{domain}>"
    )
    if secret and len(tagged) <= MESSAGE_ID_MAX:
        return tagged
    return f"<{message_id.hex}@{domain}>"


def conversation_of(message_id: str, *, channel_id: str, domain: str, secret: str) -> str | None:
    """The chat id a Message-ID of ours names, or None: not ours (another domain, no tag, a
    tag that does not verify, or no secret to verify it with)."""
    if not secret:
        return None
    match = _OURS.match(message_id.strip())
    if match is None or match.group(4).lower() != domain.lower():
        return None
    uuid_hex, chat, tag = match.group(1), match.group(2), match.group(3)
    try:
        raw = base64.b32decode(chat.upper() + "=" * (-len(chat) % 8))
        chat_id = raw.decode()
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(tag, _tag(secret, channel_id, chat_id, uuid_hex)):
        return None
    return chat_id
