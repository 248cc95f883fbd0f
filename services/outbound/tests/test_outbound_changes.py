"""Operators' edits and deletions of sent messages: outbound applies them at the provider
(Telegram editMessageText / deleteMessage, played by the sandbox) behind the message's send,
and reports every outcome on OUTBOUND: a refusal is never lost."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from openlines.events.catalog import (
    DialogMessageEdited,
    MessageChange,
    MessageDeleted,
    MessageDispatched,
    MessageDispatchFailed,
)
from openlines.events.envelope import Envelope, utc_now
from openlines.events.testing import factories
from openlines.kit.testing.service import running
from openlines.outbound.app import build_service
from openlines.outbound.domain import (
    NOT_SENT,
    Accepted,
    Delete,
    Dispatched,
    Edit,
    GiveUp,
    Rejected,
    RetryLater,
    RetryPolicy,
    Transient,
    Unknown,
    classify_telegram_change,
    decide,
    telegram_delete_message,
    telegram_edit_message_text,
)
from openlines.outbound.settings import OutboundSettings

from .outbound_support import CHANNEL, Dialogs, OutboundTopic, SandboxServer, reply_event

Settings = Callable[..., OutboundSettings]


def edited(reply: Envelope, text: str) -> Envelope:
    event = DialogMessageEdited(
        dialog_id=reply.payload.dialog_id,
        message_id=reply.payload.message_id,
        text=text,
        actor_id="ann",
        edited_at=utc_now(),
    )
    return factories.envelope(event, producer="dialogs")


def deleted(reply: Envelope) -> Envelope:
    event = MessageDeleted(
        dialog_id=reply.payload.dialog_id, message_id=reply.payload.message_id, actor_id="ann"
    )
    return factories.envelope(event, producer="dialogs")


def change_outcome(
    seen: list[Envelope], message_id: uuid.UUID, change: MessageChange
) -> Envelope | None:
    return next(
        (
            e
            for e in seen
            if getattr(e.payload, "message_id", None) == message_id
            and getattr(e.payload, "change", None) is change
        ),
        None,
    )


async def outcome_of_change(
    topic: OutboundTopic, message_id: uuid.UUID, change: MessageChange
) -> Envelope:
    seen = await topic.wait_for(lambda s: change_outcome(s, message_id, change) is not None)
    found = change_outcome(seen, message_id, change)
    assert found is not None
    return found


async def sent(dialogs: Dialogs, topic: OutboundTopic, reply: Envelope) -> Envelope:
    """Publish the reply and wait for its send's outcome."""
    await dialogs.publish(reply)
    return await topic.outcome_of(reply.payload.message_id)


async def changed(dialogs: Dialogs, topic: OutboundTopic, change: Envelope) -> Envelope:
    """Publish an edit (`edited`) or a deletion (`deleted`) and wait for its outcome."""
    await dialogs.publish(change)
    is_edit = isinstance(change.payload, DialogMessageEdited)
    kind = MessageChange.EDIT if is_edit else MessageChange.DELETE
    return await outcome_of_change(topic, change.payload.message_id, kind)


# -- the provider's answers (pure) ---------------------------------------------------------


def test_telegram_bodies_name_the_chat_and_the_message() -> None:
    assert telegram_edit_message_text(Edit("42", "1000", "fixed")) == {
        "chat_id": 42,
        "message_id": 1000,
        "text": "fixed",
    }
    assert telegram_delete_message(Delete("42", "1000")) == {"chat_id": 42, "message_id": 1000}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"ok": True, "result": True}, Accepted("7")),
        (200, {"ok": True, "result": {"message_id": 7}}, Accepted("7")),
        # Already done (the answer to a first attempt was lost): done.
        (
            400,
            {"ok": False, "description": "Bad Request: message is not modified: x"},
            Accepted("7"),
        ),
        (
            400,
            {"ok": False, "description": "Bad Request: message to delete not found"},
            Accepted("7"),
        ),
        (
            400,
            {"ok": False, "description": "Bad Request: message can't be deleted for everyone"},
            Rejected("Bad Request: message can't be deleted for everyone"),
        ),
        (502, {"ok": False, "description": "Bad Gateway"}, Transient("Bad Gateway")),
        (200, "garbage", Unknown("unreadable provider answer (HTTP 200)")),
    ],
)
def test_a_change_answer_is_classified(status: int, body: object, expected: object) -> None:
    assert classify_telegram_change(status, body, "7") == expected


def test_an_unknown_change_outcome_is_tried_again_but_a_sends_is_not() -> None:
    unknown = Unknown("connection lost")
    assert isinstance(decide(unknown, 1, RetryPolicy(), 0.5, idempotent=True), RetryLater)
    assert isinstance(decide(unknown, 1, RetryPolicy(), 0.5), GiveUp)
    assert decide(Accepted("7"), 1, RetryPolicy(), 0.5, idempotent=True) == Dispatched("7")


# -- through the running service -------------------------------------------------------------


async def test_an_edit_and_a_deletion_reach_the_provider_after_the_send(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    reply = reply_event("Helo", chat="42")
    message_id = reply.payload.message_id
    async with running(build_service(make_settings())):
        # All three at once: the edit and the deletion queue behind the send.
        await dialogs.publish(reply, edited(reply, "Hello"), deleted(reply))
        edit = await outcome_of_change(outbound_topic, message_id, MessageChange.EDIT)
        delete = await outcome_of_change(outbound_topic, message_id, MessageChange.DELETE)

    mailbox = sandbox.sandbox.mailbox(CHANNEL)
    [sent] = mailbox.sent
    assert [(e.message_id, e.chat_id, e.text) for e in mailbox.edited] == [
        (sent.message_id, 42, "Hello")
    ]
    assert [(d.message_id, d.chat_id) for d in mailbox.deleted] == [(sent.message_id, 42)]
    for outcome in (edit, delete):
        assert isinstance(outcome.payload, MessageDispatched)
        assert outcome.payload.provider_message_id == str(sent.message_id)
        assert outcome.payload.dialog_id == reply.payload.dialog_id
    # The send's own outcome is unchanged, and comes first.
    first = outbound_topic.outcomes_of(message_id)[0].payload
    assert isinstance(first, MessageDispatched) and first.change is None


async def test_a_refused_deletion_is_reported_with_the_providers_reason(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    reply = reply_event("Too old to take back", chat="42")
    async with running(build_service(make_settings())):
        await sent(dialogs, outbound_topic, reply)
        why = "Bad Request: message can't be deleted for everyone"
        await sandbox.fault(status=400, description=why)
        outcome = await changed(dialogs, outbound_topic, deleted(reply))

    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert (outcome.payload.reason, outcome.payload.retryable) == (why, False)
    assert sandbox.sandbox.mailbox(CHANNEL).deleted == []


async def test_an_edit_whose_answer_was_lost_is_applied_once(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    reply = reply_event("Helo", chat="42")
    async with running(build_service(make_settings())):
        await sent(dialogs, outbound_topic, reply)
        # Telegram applies the edit and the answer is lost: the retry's "not modified" is done.
        await sandbox.fault(status=200, disconnect=True)
        outcome = await changed(dialogs, outbound_topic, edited(reply, "Hello"))

    assert isinstance(outcome.payload, MessageDispatched)
    assert outcome.payload.attempts == 2
    assert [e.text for e in sandbox.sandbox.mailbox(CHANNEL).edited] == ["Hello"]


async def test_an_edit_of_a_message_that_never_went_out_is_reported(
    make_settings: Settings,
    sandbox: SandboxServer,
    dialogs: Dialogs,
    outbound_topic: OutboundTopic,
) -> None:
    reply = reply_event("Lost", chat="42")
    async with running(build_service(make_settings())):
        await sandbox.fault(status=403)  # the customer blocked the bot: the send fails
        failed = await sent(dialogs, outbound_topic, reply)
        assert isinstance(failed.payload, MessageDispatchFailed) and failed.payload.change is None
        outcome = await changed(dialogs, outbound_topic, edited(reply, "Found"))

    assert isinstance(outcome.payload, MessageDispatchFailed)
    assert outcome.payload.reason == NOT_SENT
    assert sandbox.sandbox.mailbox(CHANNEL).edited == []
