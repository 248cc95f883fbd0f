"""The send_jobs table: record, claim, settle. Every call runs in the caller's transaction.

States: pending -> sending -> sent | failed, and sending -> pending for a retry. A job moves to
`sending` in a transaction that commits BEFORE the provider is called; every later update is
guarded by the claim id, so a stale sender can never settle a job someone else now owns.

A job is the send of an operator's message (`kind` send) or an edit or deletion of one sent
before (`kind` edit/delete, `target_message_id`): one table, so that a change waits behind the
send of its message like any later reply of the conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from openlines.events.catalog import Button, MessageChange, MessageTemplate
from openlines.kit.telemetry import current_traceparent
from openlines.outbound.domain import SendJob

SEND = "send"  # `kind` of a send job; a change's is its MessageChange value


@dataclass(frozen=True)
class ClaimedJob:
    job: SendJob
    claim_id: UUID
    attempt: int
    """1-based number of this attempt (the claim counts it)."""
    reply_to_provider_id: str | None
    traceparent: str | None = None
    """The trace of the operator's reply: the send and its outcome continue it."""
    target_provider_id: str | None = None
    """For an edit or deletion: the provider's id of the message it changes, once sent."""


@dataclass(frozen=True)
class SettledJob:
    """What an outcome event needs."""

    message_id: UUID
    dialog_id: UUID
    channel_id: str
    attempts: int
    source_event_id: UUID
    correlation_id: UUID | None
    kind: str = SEND
    target_message_id: UUID | None = None

    @property
    def change(self) -> MessageChange | None:
        return None if self.kind == SEND else MessageChange(self.kind)


_RECORD = text(
    "INSERT INTO send_jobs (message_id, dialog_id, channel_id, conversation_key, chat_id, text, "
    "reply_to, source_event_id, correlation_id, traceparent, template, buttons) VALUES ("
    ":message_id, :dialog_id, :channel_id, :conversation_key, :chat_id, :text, :reply_to, "
    ":source_event_id, :correlation_id, :traceparent, CAST(:template AS jsonb), "
    "CAST(:buttons AS jsonb)) "
    "ON CONFLICT (message_id) DO NOTHING"
)

# The change takes the chat of its message's send job; no such job (a message outbound never
# had to send), no change to apply: nothing is inserted.
_RECORD_CHANGE = text(
    "INSERT INTO send_jobs (message_id, kind, target_message_id, dialog_id, channel_id, "
    "conversation_key, chat_id, text, source_event_id, correlation_id, traceparent) "
    "SELECT :job_id, :kind, s.message_id, s.dialog_id, s.channel_id, s.conversation_key, "
    "s.chat_id, :text, :source_event_id, :correlation_id, :traceparent "
    "FROM send_jobs s WHERE s.message_id = :target AND s.kind = 'send' "
    "ON CONFLICT (message_id) DO NOTHING"
)

_REMEMBER = text(
    "INSERT INTO message_refs (message_id, provider_message_id) VALUES (:message_id, :provider_id) "
    "ON CONFLICT (message_id) DO NOTHING"
)

# Oldest first, and only the head of each conversation: a later reply waits while an earlier
# one is pending or in flight, so a customer never reads them out of order.
_CLAIM = text(
    """
    WITH ready AS (
        SELECT j.message_id FROM send_jobs j
        WHERE j.state = 'pending' AND j.next_attempt_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM send_jobs e
              WHERE e.conversation_key = j.conversation_key AND e.seq < j.seq
                AND e.state IN ('pending', 'sending'))
        ORDER BY j.seq
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE send_jobs j
    SET state = 'sending', attempts = j.attempts + 1, claim_id = gen_random_uuid(),
        claimed_at = now(), updated_at = now()
    FROM ready WHERE j.message_id = ready.message_id
    RETURNING j.message_id, j.dialog_id, j.channel_id, j.conversation_key, j.chat_id, j.text,
        j.reply_to, j.source_event_id, j.correlation_id, j.claim_id, j.attempts, j.traceparent,
        j.kind, j.target_message_id, j.template, j.buttons,
        (SELECT r.provider_message_id FROM message_refs r WHERE r.message_id = j.reply_to)
            AS reply_to_provider_id,
        (SELECT r.provider_message_id FROM message_refs r WHERE r.message_id = j.target_message_id)
            AS target_provider_id
    """
)

_SETTLED_COLUMNS = (
    "message_id, dialog_id, channel_id, attempts, source_event_id, correlation_id, kind, "
    "target_message_id"
)

_MARK_SENT = text(
    "UPDATE send_jobs SET state = 'sent', provider_message_id = :provider_id, claim_id = NULL, "
    "updated_at = now() WHERE message_id = :message_id AND claim_id = :claim_id "
    f"AND state = 'sending' RETURNING {_SETTLED_COLUMNS}"
)

_MARK_FAILED = text(
    "UPDATE send_jobs SET state = 'failed', failure_reason = :reason, claim_id = NULL, "
    "last_error = COALESCE(CAST(:detail AS text), last_error), "
    "updated_at = now() WHERE message_id = :message_id AND claim_id = :claim_id "
    f"AND state = 'sending' RETURNING {_SETTLED_COLUMNS}"
)

_RETRY = text(
    "UPDATE send_jobs SET state = 'pending', last_error = :reason, claim_id = NULL, "
    "next_attempt_at = now() + make_interval(secs => :delay), updated_at = now() "
    "WHERE message_id = :message_id AND claim_id = :claim_id AND state = 'sending'"
)

# Nothing was sent for this claim (e.g. no time left in the lease): hand it back uncounted.
_RELEASE = text(
    "UPDATE send_jobs SET state = 'pending', attempts = attempts - 1, claim_id = NULL, "
    "updated_at = now() WHERE message_id = :message_id AND claim_id = :claim_id "
    "AND state = 'sending'"
)

# A plain UPDATE (no SKIP LOCKED): if the owner is settling the row right now, this waits,
# re-reads `state` and leaves it alone. Sends only: see _REQUEUE_CHANGES.
_EXPIRE = text(
    "UPDATE send_jobs SET state = 'failed', failure_reason = :reason, claim_id = NULL, "
    "updated_at = now() WHERE state = 'sending' AND kind = 'send' "
    "AND claimed_at < now() - make_interval(secs => :lease) "
    f"RETURNING {_SETTLED_COLUMNS}"
)
# An edit or deletion may be applied twice (see domain.decide), so one whose sender vanished
# is simply tried again.
_REQUEUE_CHANGES = text(
    "UPDATE send_jobs SET state = 'pending', claim_id = NULL, next_attempt_at = now(), "
    "updated_at = now() WHERE state = 'sending' AND kind <> 'send' "
    "AND claimed_at < now() - make_interval(secs => :lease)"
)


async def record(conn: AsyncConnection, job: SendJob) -> None:
    """Idempotent: a redelivered MessageAppended finds its job already there."""
    await conn.execute(
        _RECORD,
        {
            "message_id": job.message_id,
            "dialog_id": job.dialog_id,
            "channel_id": job.channel_id,
            "conversation_key": job.conversation_key,
            "chat_id": job.chat_id,
            "text": job.text,
            "reply_to": job.reply_to,
            "source_event_id": job.source_event_id,
            "correlation_id": job.correlation_id,
            # Recorded in the consumer's span of the MessageAppended: the reply's trace.
            "traceparent": current_traceparent(),
            "template": job.template.model_dump_json() if job.template else None,
            "buttons": (
                json.dumps([b.model_dump(mode="json") for b in job.buttons])
                if job.buttons
                else None
            ),
        },
    )


async def record_change(
    conn: AsyncConnection,
    job_id: UUID,
    target_message_id: UUID,
    change: MessageChange,
    text: str | None,
    *,
    source_event_id: UUID,
    correlation_id: UUID | None,
) -> bool:
    """Idempotent, like `record`; False when outbound never had the message to send."""
    result = await conn.execute(
        _RECORD_CHANGE,
        {
            "job_id": job_id,
            "kind": change.value,
            "target": target_message_id,
            "text": text,
            "source_event_id": source_event_id,
            "correlation_id": correlation_id,
            "traceparent": current_traceparent(),
        },
    )
    return result.rowcount > 0


async def remember_provider_id(
    conn: AsyncConnection, message_id: UUID, provider_message_id: str
) -> None:
    await conn.execute(_REMEMBER, {"message_id": message_id, "provider_id": provider_message_id})


async def claim(conn: AsyncConnection, limit: int) -> list[ClaimedJob]:
    if limit <= 0:
        return []
    rows = await conn.execute(_CLAIM, {"limit": limit})
    return [
        ClaimedJob(
            job=SendJob(
                message_id=r.message_id,
                dialog_id=r.dialog_id,
                channel_id=r.channel_id,
                conversation_key=r.conversation_key,
                chat_id=r.chat_id,
                text=r.text,
                reply_to=r.reply_to,
                source_event_id=r.source_event_id,
                correlation_id=r.correlation_id,
                change=None if r.kind == SEND else MessageChange(r.kind),
                target_message_id=r.target_message_id,
                template=MessageTemplate.model_validate(r.template) if r.template else None,
                buttons=tuple(Button.model_validate(b) for b in r.buttons or ()),
            ),
            claim_id=r.claim_id,
            attempt=r.attempts,
            reply_to_provider_id=r.reply_to_provider_id,
            traceparent=r.traceparent,
            target_provider_id=r.target_provider_id,
        )
        for r in rows
    ]


async def mark_sent(
    conn: AsyncConnection, claimed: ClaimedJob, provider_message_id: str
) -> SettledJob | None:
    """None when the claim is no longer ours (its lease expired and it was given up)."""
    return await _settle(conn, _MARK_SENT, claimed, provider_id=provider_message_id)


async def mark_failed(
    conn: AsyncConnection, claimed: ClaimedJob, reason: str, detail: str | None = None
) -> SettledJob | None:
    return await _settle(conn, _MARK_FAILED, claimed, reason=reason, detail=detail)


async def _settle(
    conn: AsyncConnection, statement: TextClause, claimed: ClaimedJob, **params: object
) -> SettledJob | None:
    """Run a settling statement on a claim; None when the claim is no longer ours."""
    row = (
        await conn.execute(
            statement,
            {"message_id": claimed.job.message_id, "claim_id": claimed.claim_id, **params},
        )
    ).first()
    return SettledJob(**row._mapping) if row is not None else None


async def retry_later(
    conn: AsyncConnection, claimed: ClaimedJob, delay_seconds: float, reason: str
) -> None:
    await conn.execute(
        _RETRY,
        {
            "message_id": claimed.job.message_id,
            "claim_id": claimed.claim_id,
            "delay": delay_seconds,
            "reason": reason,
        },
    )


async def release(conn: AsyncConnection, claimed: ClaimedJob) -> None:
    await conn.execute(
        _RELEASE, {"message_id": claimed.job.message_id, "claim_id": claimed.claim_id}
    )


async def expire_leases(
    conn: AsyncConnection, lease_seconds: float, reason: str
) -> list[SettledJob]:
    await conn.execute(_REQUEUE_CHANGES, {"lease": float(lease_seconds)})
    rows = await conn.execute(_EXPIRE, {"lease": float(lease_seconds), "reason": reason})
    return [SettledJob(**r._mapping) for r in rows]


async def job_state(conn: AsyncConnection, message_id: UUID) -> dict[str, object] | None:
    """The row as a dict (tests and diagnostics)."""
    row = (
        await conn.execute(
            text(
                "SELECT state, attempts, provider_message_id, failure_reason, last_error, "
                "next_attempt_at, claimed_at FROM send_jobs WHERE message_id = :id"
            ),
            {"id": message_id},
        )
    ).first()
    return dict(row._mapping) if row is not None else None
