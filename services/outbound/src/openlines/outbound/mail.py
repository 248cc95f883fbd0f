"""E-mail replies, free of I/O: the mail an operator's reply becomes, and what an SMTP answer
means (the e-mail counterpart of `domain.telegram_*` and `domain.classify_telegram`).

A reply threads in the customer's mail client: `In-Reply-To` names the customer's mail it answers
(the one the operator quoted, else their latest), `References` the thread so far, the subject is
`Re: <their subject>`, and its own Message-ID names the conversation for ingest
(`openlines.events.mail`). It has a text and an HTML part.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from uuid import UUID

from openlines.events.lines import Channel
from openlines.events.mail import reply_message_id
from openlines.outbound.domain import Outgoing, ProviderOutcome, Rejected, Transient

REFERENCES_MAX = 20
"""Message-IDs kept in `References` (the root and the newest, as RFC 5322 suggests trimming)."""
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|ha|відп|ответ)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class MailThread:
    """What outbound knows of a conversation's mail (from the customer's MessageReceived)."""

    subject: str | None = None
    last_inbound_id: str | None = None
    """Message-ID of the customer's latest mail."""
    message_ids: tuple[str, ...] = ()
    """The thread's Message-IDs so far, oldest first: theirs and our replies'."""


def reply_subject(subject: str | None) -> str:
    if not subject:
        return "Re: your message"
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def references(thread: MailThread, in_reply_to: str | None) -> tuple[str, ...]:
    ids = [*thread.message_ids]
    if in_reply_to is not None and in_reply_to not in ids:
        ids.append(in_reply_to)
    if len(ids) > REFERENCES_MAX:
        ids = [ids[0], *ids[-(REFERENCES_MAX - 1) :]]
    return tuple(ids)


def html_of(text: str) -> str:
    """The HTML part: the text escaped, paragraphs and line breaks kept."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>\n"
        for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><body style="font-family: sans-serif">\n{body}</body></html>\n'


def reply_mail(
    channel: Channel,
    message: Outgoing,
    thread: MailThread,
    *,
    message_id: UUID,
    now: datetime | None = None,
) -> EmailMessage:
    """The reply `message` as the mail that goes to the relay."""
    assert channel.email is not None, "an email channel"
    mail = EmailMessage()
    mail["From"] = formataddr((channel.email.display_name, channel.email.address))
    mail["To"] = message.chat_id
    mail["Subject"] = reply_subject(thread.subject)
    mail["Date"] = format_datetime(now or datetime.now(UTC))
    mail["Message-ID"] = reply_message_id(
        message_id,
        channel_id=channel.id,
        chat_id=message.chat_id,
        domain=channel.email.domain,
        secret=channel.secret,
    )
    in_reply_to = message.reply_to or thread.last_inbound_id
    if in_reply_to is not None:
        mail["In-Reply-To"] = in_reply_to
    refs = references(thread, in_reply_to)
    if refs:
        mail["References"] = " ".join(refs)
    mail.set_content(message.text)
    mail.add_alternative(html_of(message.text), subtype="html")
    return mail


def classify_smtp(code: int, text: str) -> ProviderOutcome:
    """An SMTP reply that refused the mail: 4xx is temporary (the relay asks to come back),
    5xx permanent (RFC 5321 §4.2.1). A reply is the relay's word that it did not take it."""
    reason = f"SMTP {code}: {text}".strip()[:500]
    if 400 <= code < 500:
        return Transient(reason)
    return Rejected(reason)
