"""E-mail replies, pure: threading headers, subject, parts, and what SMTP answers mean."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from openlines.events.lines import Channel
from openlines.events.mail import conversation_of
from openlines.outbound.domain import Outgoing, Rejected, Transient
from openlines.outbound.mail import (
    REFERENCES_MAX,
    MailThread,
    classify_smtp,
    html_of,
    references,
    reply_mail,
    reply_subject,
)

CHANNEL = Channel.model_validate(
    {
        "id": "mail-test",
        "type": "email",
        "secret": "s3cret",
        "email": {"address": "help@shop.test", "display_name": "Shop help"},
    }
)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_reply_threads_under_the_customers_latest_mail() -> None:
    thread = MailThread(
        "Order 42", "<c2@x.test>", ("<c1@x.test>", "<ours@shop.test>", "<c2@x.test>")
    )
    message_id = uuid4()
    mail = reply_mail(
        CHANNEL, Outgoing("ann@x.test", "It ships today."), thread, message_id=message_id, now=NOW
    )
    assert mail["From"] == "Shop help <help@shop.test>"
    assert mail["To"] == "ann@x.test"
    assert mail["Subject"] == "Re: Order 42"
    assert mail["In-Reply-To"] == "<c2@x.test>"
    assert mail["References"] == "<c1@x.test> <ours@shop.test> <c2@x.test>"
    assert mail["Date"] == "Mon, 30 Nov 2026 12:00:00 +0000"
    # Its own Message-ID names the conversation for ingest.
    assert mail["Message-ID"].startswith(f"<{message_id.hex}.")
    assert (
        conversation_of(
            mail["Message-ID"], channel_id="mail-test", domain="shop.test", secret="s3cret"
        )
        == "ann@x.test"
    )
    text, html = (part.get_content() for part in mail.iter_parts())
    assert text.strip() == "It ships today."
    assert "<p>It ships today.</p>" in html


def test_a_quoted_message_is_the_one_answered() -> None:
    thread = MailThread("Order", "<c2@x.test>", ("<c1@x.test>", "<c2@x.test>"))
    mail = reply_mail(
        CHANNEL, Outgoing("ann@x.test", "Yes", reply_to="<c1@x.test>"), thread, message_id=uuid4()
    )
    assert mail["In-Reply-To"] == "<c1@x.test>"


def test_without_a_known_thread_the_reply_still_goes_out() -> None:
    mail = reply_mail(CHANNEL, Outgoing("ann@x.test", "Hi"), MailThread(), message_id=uuid4())
    assert mail["Subject"] == "Re: your message"
    assert mail["In-Reply-To"] is None and mail["References"] is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Order 42", "Re: Order 42"), ("Re: Order 42", "Re: Order 42"), ("AW: Frage", "AW: Frage")],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_references_keep_the_root_and_the_newest() -> None:
    ids = tuple(f"<{n}@x>" for n in range(30))
    kept = references(MailThread(message_ids=ids), "<new@x>")
    assert len(kept) == REFERENCES_MAX
    assert kept[0] == "<0@x>" and kept[-1] == "<new@x>" and kept[-2] == "<29@x>"


def test_html_part_escapes_the_text() -> None:
    assert "<p>a &lt;b&gt;<br>\nc</p>" in html_of("a <b>\nc")


@pytest.mark.parametrize(
    ("code", "kind"),
    [(421, Transient), (450, Transient), (451, Transient), (452, Transient), (550, Rejected),
     (552, Rejected), (554, Rejected)],
)  # fmt: skip
def test_smtp_codes_are_classified(code: int, kind: type) -> None:
    assert isinstance(classify_smtp(code, "text"), kind)
