"""E-mail, the inbound side: a raw RFC 5322 message for an `email` channel becomes one
`MessageReceived`. Pure: the SMTP edge (smtp.py) receives the bytes and publishes the result.

- The conversation is the customer's address (KeyCRM: one dialog per correspondent), unless the
  mail answers one of our replies: their Message-IDs name their conversation
  (`openlines.events.mail`), so `In-Reply-To` / `References` decide first.
- The text is the text/plain part, else the HTML part reduced to plain text (scripts, styles and
  markup dropped; nothing of it reaches an operator's screen as HTML); quoted history and the
  signature are cut.
- Attachments are kept as metadata; `file_id` is the SHA-256 of their bytes, the key under
  which an object store will keep them.
- The event id comes from the Message-ID: a mail delivered twice is one event.
- Mail robots (auto-replies, bounces, lists) are ignored, so that two auto-responders never
  talk to each other through a dialog.

Mail is hostile input: anything the standard library's parser cannot make sense of is refused
with InvalidUpdate (the SMTP edge answers 550), never an exception of another kind.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from openlines.events import deterministic_event_id
from openlines.events.catalog import (
    Attachment,
    AttachmentKind,
    ChannelType,
    Customer,
    MessageReceived,
    conversation_key,
)
from openlines.events.limits import ATTACHMENTS_MAX, ID_MAX, NAME_MAX, TEXT_MAX
from openlines.events.lines import Channel, Line
from openlines.events.mail import MESSAGE_ID_MAX, conversation_of
from openlines.ingest.domain import Accepted, Ignored, InvalidUpdate, Outcome

_MSG_ID = re.compile(r"<[^<>\s]{1,998}>")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
# Precedence values of mail a robot sent (RFC 2076; `auto_reply` is common practice).
_ROBOT_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def parse_mail(raw: bytes, line: Line, channel: Channel, *, received_at: datetime) -> Outcome:
    """The outcome of a mail delivered to `channel`; InvalidUpdate when it is not one."""
    assert channel.email is not None, "an email channel"
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return _outcome(message, raw, line, channel, received_at)
    except InvalidUpdate:
        raise
    except Exception as exc:
        # The email package raises many kinds (HeaderParseError, ValueError, IndexError,
        # AttributeError, LookupError...) on broken input: all mean "not a mail we can read".
        raise InvalidUpdate(f"unreadable mail: {type(exc).__name__}") from None


def _outcome(
    message: EmailMessage, raw: bytes, line: Line, channel: Channel, received_at: datetime
) -> Outcome:
    assert channel.email is not None
    robot = _robot(message)
    if robot is not None:
        return Ignored(robot)
    name, address = _sender(message)
    message_id = _message_id(message, raw)
    chat_id = _thread(message, channel) or address
    subject = _clean_line(_header(message, "Subject"))[:NAME_MAX] or None
    body, attachments = _content(message)
    text = cut_quoted(body)[:TEXT_MAX].strip() or (subject or "")
    if not text and not attachments:
        return Ignored("mail_without_content")
    payload = MessageReceived(
        channel_id=channel.id,
        channel_type=ChannelType.EMAIL,
        conversation_key=conversation_key(channel.id, chat_id),
        external_chat_id=chat_id,
        external_user_id=address,
        external_message_id=message_id,
        customer=Customer(name=(name or address)[:NAME_MAX], external_id=address, email=address),
        text=text or None,
        attachments=attachments,
        reply_to_external_id=_in_reply_to(message),
        sent_at=_date(message) or received_at,
        line_id=line.id,
        subject=subject,
    )
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    event_id = deterministic_event_id(channel.id, "email", digest)
    return Accepted(payload=payload, event_id=event_id, occurred_at=payload.sent_at)


# -- headers -----------------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


def _clean_line(value: str) -> str:
    """One line of printable text (headers may fold, or smuggle control characters)."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def _robot(message: Message) -> str | None:
    """Why a robot sent this mail (RFC 3834 auto-replies, delivery reports, lists), or None."""
    auto = _header(message, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if _header(message, "Precedence").strip().lower() in _ROBOT_PRECEDENCE:
        return "bulk_mail"
    if message.get_content_type() == "multipart/report":
        return "delivery_report"
    if message.get("List-Id") is not None:
        return "mailing_list"
    return None


def _sender(message: Message) -> tuple[str, str]:
    """The From address (lower-cased: one conversation whatever the case) and its name."""
    found = [
        (name, addr)
        for name, addr in getaddresses([_header(message, "From")])
        if _ADDRESS.match(addr)
    ]
    if not found:
        raise InvalidUpdate("no sender address in From")
    name, address = found[0]
    address = address.strip().lower()
    if len(address) > 254:
        raise InvalidUpdate("sender address too long")
    return _clean_line(name), address


def _message_ids(value: str) -> list[str]:
    return _MSG_ID.findall(value)


def _message_id(message: Message, raw: bytes) -> str:
    """The mail's Message-ID; for a mail without a usable one, one made from its bytes (the
    same mail delivered again gets the same)."""
    found = _message_ids(_header(message, "Message-ID"))
    if found and len(found[0]) <= MESSAGE_ID_MAX and found[0].isprintable():
        return found[0]
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@message-id.openlines.invalid>"


def _in_reply_to(message: Message) -> str | None:
    found = _message_ids(_header(message, "In-Reply-To"))
    return found[0] if found and len(found[0]) <= ID_MAX and found[0].isprintable() else None


def _thread(message: Message, channel: Channel) -> str | None:
    """The conversation an answer to one of our replies belongs to: In-Reply-To first, then
    References from the newest."""
    assert channel.email is not None
    candidates = [
        *_message_ids(_header(message, "In-Reply-To")),
        *reversed(_message_ids(_header(message, "References"))),
    ]
    for candidate in candidates:
        chat_id = conversation_of(
            candidate, channel_id=channel.id, domain=channel.email.domain, secret=channel.secret
        )
        if chat_id is not None and _ADDRESS.match(chat_id):
            return chat_id
    return None


def _date(message: Message) -> datetime | None:
    try:
        sent = parsedate_to_datetime(_header(message, "Date"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if sent.tzinfo is None:
        return None
    return sent.astimezone(UTC)


# -- body and attachments ------------------------------------------------------------------


def _content(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        is_text = content_type in ("text/plain", "text/html")
        if disposition == "attachment" or not is_text:
            if len(attachments) < ATTACHMENTS_MAX:
                attachments.append(_attachment(part))
            continue
        if content_type == "text/plain" and plain is None:
            plain = _text_of(part)
        elif content_type == "text/html" and html is None:
            html = _text_of(part)
    if plain is not None and plain.strip():
        body = plain
    elif html is not None:
        body = html_to_text(html)
    else:
        body = ""
    return _printable(body), tuple(attachments)


def _text_of(part: Message) -> str:
    """The decoded text of a part; an unknown or lying charset still yields text."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _printable(text: str) -> str:
    """Line breaks and tabs stay; other control characters (and NUL) go."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or c.isprintable())


_KINDS = {
    "image": AttachmentKind.PHOTO,
    "audio": AttachmentKind.AUDIO,
    "video": AttachmentKind.VIDEO,
}


def _attachment(part: Message) -> Attachment:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    content_type = part.get_content_type()
    name = part.get_filename()
    return Attachment(
        kind=_KINDS.get(part.get_content_maintype(), AttachmentKind.DOCUMENT),
        file_id=f"sha256:{hashlib.sha256(data).hexdigest()}",
        file_name=_clean_line(name)[:NAME_MAX] or None if name else None,
        mime_type=content_type[:NAME_MAX],
        size_bytes=len(data),
    )


# -- HTML to text --------------------------------------------------------------------------

_BLOCKS = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
    "section", "article", "header", "footer", "pre", "hr",
}  # fmt: skip
_SKIPPED = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
# Containers of quoted history: Gmail, Thunderbird, Apple Mail and Outlook's.
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote")
_QUOTE_IDS = ("appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip: list[str] = []  # open tags whose content is dropped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag == self._skip[0] and tag not in ("br", "hr", "img"):
                self._skip.append(tag)
            return
        found = dict(attrs)
        classes = (found.get("class") or "").lower()
        if (
            tag in _SKIPPED
            or tag == "blockquote"
            or any(name in classes for name in _QUOTE_CLASSES)
            or (found.get("id") or "").lower() in _QUOTE_IDS
        ):
            self._skip.append(tag)
            return
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip and tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[0]:
                self._skip.pop()
            return
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML mail: what a reader sees, without markup, scripts, styles or the
    quoted history."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{2,}", "\n", text).strip()


# -- quoted history ------------------------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"^(on\s.+\swrote:|.+\s(wrote|writes|пишет|написал|написала|написав|пише):)$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^(on|am|le|el)\s.+\d", re.IGNORECASE)
_SEPARATORS = re.compile(
    r"^(-{2,}\s*(original message|forwarded message|исходное сообщение|пересылаемое сообщение)"
    r".*|_{10,})$",
    re.IGNORECASE,
)
_OUTLOOK_HEADER = re.compile(r"^(from|от|від):\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^(sent|date|to|subject|отправлено|дата|кому|тема):\s", re.IGNORECASE)


def cut_quoted(text: str) -> str:
    """The new part of a reply: quoted lines (`>`) are dropped, and everything from the quote's
    attribution ("On ... wrote:"), an "Original Message" separator, an Outlook header block or
    the signature delimiter ("-- ") on is cut. A mail that is nothing but quote is kept whole:
    better an operator reads history than nothing."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if _SEPARATORS.match(stripped) or line.rstrip("\r") == "-- ":
            break
        if _ATTRIBUTION.match(stripped):
            break
        # "On Mon, 1 Jan 2024 at 10:00, Ann <ann@example.com>" / "wrote:" folded in two.
        if _ATTRIBUTION_START.match(stripped) and _ATTRIBUTION.match(f"{stripped} {following}"):
            break
        if _OUTLOOK_HEADER.match(stripped) and _OUTLOOK_NEXT.match(following):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    cut = "\n".join(kept).strip()
    return cut if cut else text.strip()
