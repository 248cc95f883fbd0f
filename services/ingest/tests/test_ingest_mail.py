"""The e-mail parser: threading, HTML to text, quoted history, encodings, attachments, robots;
and a fuzz of arbitrary bytes, headers and MIME trees (only a clean refusal, never a crash)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlines.events.catalog import AttachmentKind, MessageReceived
from openlines.events.lines import LinesConfig
from openlines.events.mail import conversation_of, reply_message_id
from openlines.ingest.domain import Accepted, Ignored, InvalidUpdate
from openlines.ingest.mail import cut_quoted, html_to_text, parse_mail

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET = "mail-secret"
LINES = LinesConfig.model_validate(
    {
        "lines": [
            {
                "id": "mail-line",
                "channels": [
                    {
                        "id": "mail-test",
                        "type": "email",
                        "secret": SECRET,
                        "email": {"address": "help@shop.test"},
                    }
                ],
            }
        ]
    }
)
LINE, CHANNEL = LINES.lines[0], LINES.lines[0].channels[0]


def mail(
    text: str | None = "Where is my order?",
    *,
    sender: str = "Ann Customer <Ann@Example.com>",
    subject: str = "Order 42",
    html: str | None = None,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "help@shop.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid4().hex}@example.com>"
    message["Date"] = format_datetime(NOW)
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    return message


def received(message: EmailMessage | bytes) -> MessageReceived:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    outcome = parse_mail(raw, LINE, CHANNEL, received_at=NOW)
    assert isinstance(outcome, Accepted), outcome
    assert isinstance(outcome.payload, MessageReceived)
    return outcome.payload


def test_a_mail_becomes_a_message_of_the_senders_conversation() -> None:
    message = mail()
    got = received(message)
    assert got.conversation_key == "mail-test:ann@example.com"
    assert got.external_chat_id == got.external_user_id == "ann@example.com"
    assert got.external_message_id == message["Message-ID"]
    assert got.customer.name == "Ann Customer"
    assert got.customer.email == "ann@example.com"
    assert got.text == "Where is my order?"
    assert got.subject == "Order 42"
    assert got.sent_at == NOW
    assert got.line_id == "mail-line"


def test_the_event_id_comes_from_the_message_id() -> None:
    message = mail()
    raw = message.as_bytes()
    first = parse_mail(raw, LINE, CHANNEL, received_at=NOW)
    again = parse_mail(raw, LINE, CHANNEL, received_at=datetime.now(UTC))
    other = parse_mail(mail().as_bytes(), LINE, CHANNEL, received_at=NOW)
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert isinstance(other, Accepted)
    assert first.event_id == again.event_id != other.event_id


def test_a_mail_without_message_id_still_dedupes() -> None:
    message = mail()
    del message["Message-ID"]
    raw = message.as_bytes()
    first = received(raw)
    assert first.external_message_id.endswith("@message-id.openlines.invalid>")
    assert received(raw).external_message_id == first.external_message_id


def test_an_answer_to_our_reply_follows_its_message_id_first() -> None:
    ours = reply_message_id(
        uuid4(),
        channel_id="mail-test",
        chat_id="ann@example.com",
        domain="shop.test",
        secret=SECRET,
    )
    # From another address of hers: In-Reply-To decides, not the sender.
    got = received(mail(sender="ann.work@corp.test", In_Reply_To=ours))
    assert got.conversation_key == "mail-test:ann@example.com"
    assert got.reply_to_external_id == ours
    # References alone (some clients drop In-Reply-To), newest last.
    got = received(mail(sender="ann.work@corp.test", References=f"<root@corp.test> {ours}"))
    assert got.conversation_key == "mail-test:ann@example.com"


def test_a_made_up_thread_tag_does_not_move_a_mail_into_another_dialog() -> None:
    forged = reply_message_id(
        uuid4(), channel_id="mail-test", chat_id="ann@example.com", domain="shop.test", secret="x"
    )
    got = received(mail(sender="mallory@evil.test", In_Reply_To=forged))
    assert got.conversation_key == "mail-test:mallory@evil.test"
    other_domain = forged.replace("@shop.test", "@evil.test")
    assert (
        conversation_of(other_domain, channel_id="mail-test", domain="shop.test", secret=SECRET)
        is None
    )


def test_unknown_references_fall_back_to_the_sender() -> None:
    got = received(mail(In_Reply_To="<abc@example.com>", References="<abc@example.com>"))
    assert got.conversation_key == "mail-test:ann@example.com"


def test_html_only_mail_becomes_safe_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>t</title></head><body>"
        "<p>Hello&nbsp;<b>there</b> &amp; thanks</p><script>alert(1)</script>"
        "<div>Line two<br>Line three</div><ul><li>one</li><li>two</li></ul>"
        '<div class="gmail_quote">On Mon wrote:<blockquote>old text</blockquote></div>'
        "</body></html>"
    )
    got = received(mail(None, html=html))
    assert got.text == "Hello there & thanks\nLine two\nLine three\n- one\n- two"
    assert "<" not in (got.text or "") and "alert" not in (got.text or "")


def test_the_plain_part_wins_over_the_html_one() -> None:
    got = received(mail("plain words", html="<p>html words</p>"))
    assert got.text == "plain words"


def test_quoted_history_and_signature_are_cut() -> None:
    text = (
        "Thanks, it arrived.\n\n-- \nAnn\n\n"
        "On Mon, 30 Nov 2026 at 10:00, Support <help@shop.test> wrote:\n> Your order is on its way"
    )
    assert received(mail(text)).text == "Thanks, it arrived."


@pytest.mark.parametrize(
    "text",
    [
        "New answer\n\nOn Mon, 30 Nov 2026 at 10:00, Support <help@shop.test>\nwrote:\n> old",
        "New answer\n\n-----Original Message-----\nFrom: Support\nold",
        "New answer\n\nFrom: Support <help@shop.test>\nSent: Monday\nTo: Ann\nold",
        "New answer\n> old line\n> another",
        "New answer\n\n30.11.2026, 10:00, Support пишет:\n> old",
    ],
)
def test_quote_styles_are_cut(text: str) -> None:
    assert cut_quoted(text) == "New answer"


def test_interleaved_answers_keep_the_new_lines() -> None:
    assert cut_quoted("> question one\nanswer one\n> question two\nanswer two") == (
        "answer one\nanswer two"
    )


def test_a_mail_of_nothing_but_quote_is_kept() -> None:
    assert cut_quoted("> only a quote") == "> only a quote"


def test_encodings_of_body_and_headers() -> None:
    message = mail(
        "Привіт, де моє замовлення?", subject="Замовлення №42", sender="Олена <o@ua.test>"
    )
    # set_content picks base64 or quoted-printable and encodes the headers (RFC 2047).
    raw = message.as_bytes()
    assert b"=?utf-8?" in raw
    got = received(raw)
    assert got.text == "Привіт, де моє замовлення?"
    assert got.subject == "Замовлення №42"
    assert got.customer.name == "Олена"


def test_a_legacy_charset_and_a_lying_one() -> None:
    raw = (
        b"From: a@b.test\r\nTo: help@shop.test\r\nSubject: =?koi8-r?B?8NLJ18XU?=\r\n"
        b"Message-ID: <k@b.test>\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n"
        + "Привет".encode("koi8-r")
    )
    got = received(raw)
    assert got.text == "Привет" and got.subject == "Привет"
    lying = raw.replace(b"charset=koi8-r", b"charset=no-such-charset")
    assert received(lying).text  # decoded somehow, not refused


def test_attachments_are_kept_as_metadata() -> None:
    message = mail("See the photo")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="box.png")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="bill.pdf")
    got = received(message)
    assert got.text == "See the photo"
    photo, bill = got.attachments
    assert (photo.kind, photo.file_name, photo.mime_type) == (
        AttachmentKind.PHOTO,
        "box.png",
        "image/png",
    )
    assert photo.size_bytes == len(b"\x89PNG fake")
    assert photo.file_id.startswith("sha256:")
    assert (bill.kind, bill.file_name) == (AttachmentKind.DOCUMENT, "bill.pdf")


def test_attachment_only_mail_is_a_message() -> None:
    message = mail(None)
    message.add_attachment(b"data", maintype="application", subtype="zip", filename="a.zip")
    got = received(message)
    assert got.attachments and got.text == "Order 42"  # the subject speaks for it


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"Auto_Submitted": "auto-replied"}, "auto_submitted"),
        ({"Precedence": "bulk"}, "bulk_mail"),
        ({"List_Id": "<news.shop.test>"}, "mailing_list"),
    ],
)
def test_robots_are_ignored(headers: dict[str, str], kind: str) -> None:
    outcome = parse_mail(mail(**headers).as_bytes(), LINE, CHANNEL, received_at=NOW)
    assert outcome == Ignored(kind)


@pytest.mark.parametrize(
    "raw",
    [b"", b"no headers at all", b"From: nobody\r\n\r\nhi", b"From: <>\r\n\r\nhi", b"\x00\xff" * 40],
)
def test_unreadable_or_senderless_mail_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidUpdate):
        parse_mail(raw, LINE, CHANNEL, received_at=NOW)


def test_html_to_text_unescapes_and_drops_markup() -> None:
    assert html_to_text("<p>a &lt;b&gt; c</p><img src=x onerror=alert(1)>") == "a <b> c"


# -- fuzz ------------------------------------------------------------------------------------

_HEADER_NAMES = st.sampled_from(
    [
        "From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
        "Auto-Submitted", "X-Other",
    ]
)  # fmt: skip
_HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "multipart/mixed; boundary=XX",
            'multipart/alternative; boundary="b"',
            "text/html; charset=utf-16",
            "text/plain; charset=x-unknown",
            "base64",
            "quoted-printable",
            "attachment; filename*=utf-8''%E2%82%AC.txt",
            "=?utf-8?b?invalid?=",
            "<a@b> <c@d",
            "Ann <a@b.test>",
            "Mon, 99 Foo 20000 25:61:61 +9999",
        ]
    ),
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n",
            b"--XX\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n",
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>x<blockquote><div>\r\n--b--",
            b"=E2=82=AC=\r\n=ZZ",
            b"!!!not base64!!!",
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=10),
    body=_BODIES,
)
def test_fuzz_arbitrary_mail_is_parsed_or_cleanly_refused(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = head.encode("utf-8", "surrogateescape") + b"\r\n" + body
    try:
        outcome = parse_mail(raw, LINE, CHANNEL, received_at=NOW)
    except InvalidUpdate:
        return
    if isinstance(outcome, Accepted):
        # What it built is a legal event: it round-trips through the catalog.
        assert MessageReceived.model_validate(outcome.payload.model_dump()) == outcome.payload


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes_are_parsed_or_cleanly_refused(raw: bytes) -> None:
    with contextlib.suppress(InvalidUpdate):
        parse_mail(raw, LINE, CHANNEL, received_at=NOW)
