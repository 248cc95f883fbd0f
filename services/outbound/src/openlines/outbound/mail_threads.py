"""The email_threads table: the subject and Message-IDs of each e-mail conversation.

Recorded from the inbound topic (the customer's MessageReceived carries the mail's subject and
Message-ID; dialogs' MessageAppended does not) and from the replies outbound sent; read when a
reply goes out (outbound.mail.reply_mail).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.events.catalog import ChannelType, MessageReceived
from openlines.events.envelope import Envelope
from openlines.kit.subscription import Subscription
from openlines.outbound.mail import REFERENCES_MAX, MailThread

# Appends :mid once, keeping the root and the newest REFERENCES_MAX - 1.
_APPEND = (
    "CASE WHEN :mid = ANY(t.message_ids) THEN t.message_ids "
    "WHEN cardinality(t.message_ids) < :cap THEN t.message_ids || :mid "
    "ELSE t.message_ids[1:1] || t.message_ids[cardinality(t.message_ids) - :cap + 3:] || :mid END"
)

_RECEIVED = text(
    "INSERT INTO email_threads AS t (conversation_key, subject, last_inbound_id, message_ids) "
    "VALUES (:key, :subject, :mid, ARRAY[:mid]) "
    "ON CONFLICT (conversation_key) DO UPDATE SET "
    "subject = COALESCE(EXCLUDED.subject, t.subject), last_inbound_id = :mid, "
    f"message_ids = {_APPEND}, updated_at = now()"
)

_SENT = text(
    "INSERT INTO email_threads AS t (conversation_key, message_ids) VALUES (:key, ARRAY[:mid]) "
    f"ON CONFLICT (conversation_key) DO UPDATE SET message_ids = {_APPEND}, updated_at = now()"
)

_READ = text(
    "SELECT subject, last_inbound_id, message_ids FROM email_threads WHERE conversation_key = :key"
)


def subscribe(sub: Subscription) -> None:
    sub.on(MessageReceived, when=lambda m: m.channel_type is ChannelType.EMAIL)(record_received)


async def record_received(conn: AsyncConnection, envelope: Envelope[MessageReceived]) -> None:
    mail = envelope.payload
    await conn.execute(
        _RECEIVED,
        {
            "key": mail.conversation_key,
            "subject": mail.subject,
            "mid": mail.external_message_id,
            "cap": REFERENCES_MAX,
        },
    )


class MailThreads:
    """Read and extend threads for the provider, each call its own short transaction."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self.engine = engine  # the service's, once it has started

    async def get(self, conversation_key: str) -> MailThread:
        async with self.engine().connect() as conn:
            row = (await conn.execute(_READ, {"key": conversation_key})).first()
        if row is None:
            return MailThread()
        return MailThread(row.subject, row.last_inbound_id, tuple(row.message_ids))

    async def sent(self, conversation_key: str, message_id: str) -> None:
        async with self.engine().begin() as conn:
            await conn.execute(
                _SENT, {"key": conversation_key, "mid": message_id, "cap": REFERENCES_MAX}
            )
