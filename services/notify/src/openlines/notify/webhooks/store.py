"""The webhook tables: subscriptions, deliveries (one durable queue per subscription) and the
dialogs' lines. Every call runs in the caller's transaction.

A delivery: pending -> delivering -> delivered | failed, and delivering -> pending for a retry.
It moves to `delivering` in a transaction that commits BEFORE the receiver is called; every
later update is guarded by the claim id, so a stale dispatcher can never settle a delivery
someone else now owns. A delivery left in `delivering` longer than the lease (its dispatcher
died mid-call) is pending again: delivery is at least once, receivers dedupe by event id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text

_SUBSCRIPTION = (
    "id, url, event_types, lines, enabled, disabled_reason, created_by, created_at, updated_at"
)
_DELIVERY = (
    "id, subscription_id, event_id, event_type, state, attempts, next_attempt_at, give_up_at,"
    " last_status, last_error, delivered_at, created_at, updated_at, seq"
)


# -- subscriptions -----------------------------------------------------------------------------


async def create_subscription(conn: AsyncConnection, values: Mapping[str, Any]) -> Row:
    row = await conn.execute(
        text(
            "INSERT INTO webhook_subscriptions (id, url, event_types, lines, secret, created_by)"
            " VALUES (:id, :url, :event_types, :lines, :secret, :created_by)"
            f" RETURNING {_SUBSCRIPTION}"
        ),
        dict(values),
    )
    return row.one()


async def get_subscription(
    conn: AsyncConnection, subscription_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    sql = f"SELECT {_SUBSCRIPTION} FROM webhook_subscriptions WHERE id = :id"
    if lock:
        sql += " FOR UPDATE"
    return (await conn.execute(text(sql), {"id": subscription_id})).first()


async def list_subscriptions(conn: AsyncConnection) -> Sequence[Row]:
    sql = f"SELECT {_SUBSCRIPTION} FROM webhook_subscriptions ORDER BY created_at, id"
    return (await conn.execute(text(sql))).all()


_CHANGEABLE = ("url", "event_types", "lines", "secret", "enabled")


async def update_subscription(
    conn: AsyncConnection, subscription_id: uuid.UUID, changes: Mapping[str, Any]
) -> Row | None:
    assert set(changes) <= set(_CHANGEABLE), changes
    sets = [f"{name} = :{name}" for name in changes]
    if changes.get("enabled") is True:
        sets.append("disabled_reason = NULL")
    sql = (
        f"UPDATE webhook_subscriptions SET {', '.join(sets)}, updated_at = now()"
        f" WHERE id = :id RETURNING {_SUBSCRIPTION}"
    )
    return (await conn.execute(text(sql), {**changes, "id": subscription_id})).first()


async def delete_subscription(conn: AsyncConnection, subscription_id: uuid.UUID) -> bool:
    result = await conn.execute(
        text("DELETE FROM webhook_subscriptions WHERE id = :id"), {"id": subscription_id}
    )
    return result.rowcount > 0


# -- recording (the consumer) ------------------------------------------------------------------

_REMEMBER_LINE = text(
    "INSERT INTO webhook_dialog_lines (dialog_id, line_id) VALUES (:dialog_id, :line_id)"
    " ON CONFLICT (dialog_id) DO UPDATE SET line_id = EXCLUDED.line_id"
)

# One statement per event: a delivery for every enabled subscription that takes its type and
# its line (a subscription of no lines takes every line, and the events of none).
_RECORD = text(
    """
    WITH event AS (
        SELECT COALESCE(
            CAST(:line_id AS text),
            (SELECT l.line_id FROM webhook_dialog_lines l WHERE l.dialog_id = :dialog_id),
            CAST(:fallback_line AS text)) AS line_id
    )
    INSERT INTO webhook_deliveries
        (id, subscription_id, event_id, event_type, order_key, body, give_up_at)
    SELECT gen_random_uuid(), s.id, :event_id, :event_type, :order_key, :body,
        now() + make_interval(secs => :retry_for)
    FROM webhook_subscriptions s, event
    WHERE s.enabled
      AND s.event_types && :types
      AND (cardinality(s.lines) = 0 OR event.line_id = ANY(s.lines))
    ON CONFLICT (subscription_id, event_id) DO NOTHING
    """
).bindparams(bindparam("types", type_=ARRAY(Text)))


async def remember_line(conn: AsyncConnection, dialog_id: uuid.UUID, line_id: str) -> None:
    await conn.execute(_REMEMBER_LINE, {"dialog_id": dialog_id, "line_id": line_id})


@dataclass(frozen=True)
class NewEvent:
    event_id: uuid.UUID
    event_type: str
    order_key: str
    body: bytes
    line_id: str | None
    fallback_line: str | None
    dialog_id: uuid.UUID | None


async def record(conn: AsyncConnection, event: NewEvent, retry_for_seconds: float) -> int:
    """Queue the event for its subscriptions (idempotent: a redelivered record finds its
    deliveries there); returns how many were queued."""
    result = await conn.execute(
        _RECORD,
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "types": ["*", event.event_type],
            "order_key": event.order_key,
            "body": event.body,
            "line_id": event.line_id,
            "fallback_line": event.fallback_line,
            "dialog_id": event.dialog_id,
            "retry_for": retry_for_seconds,
        },
    )
    return result.rowcount


# -- claiming and settling (the dispatcher) ----------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: bytes
    attempt: int
    """1-based number of this attempt."""
    claim_id: uuid.UUID
    url: str
    secret: str
    remaining_seconds: float
    """Until the delivery's retries stop (its `give_up_at`), as of the claim."""


# Oldest first; only the head of each (subscription, dialog): a later event waits while an
# earlier one is pending or in flight. At most `per_subscription` in flight per subscription,
# so a slow or dead receiver holds its own slots and nobody else's.
_CLAIM = text(
    """
    WITH busy AS (
        SELECT subscription_id, count(*) AS n FROM webhook_deliveries
        WHERE state = 'delivering' GROUP BY subscription_id
    ), heads AS (
        SELECT d.id, d.subscription_id, d.seq,
            row_number() OVER (PARTITION BY d.subscription_id ORDER BY d.seq) AS rank
        FROM webhook_deliveries d
        JOIN webhook_subscriptions s ON s.id = d.subscription_id
        WHERE s.enabled AND d.state = 'pending' AND d.next_attempt_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries e
              WHERE e.subscription_id = d.subscription_id AND e.order_key = d.order_key
                AND e.seq < d.seq AND e.state IN ('pending', 'delivering'))
    ), picked AS (
        SELECT h.id FROM heads h LEFT JOIN busy b USING (subscription_id)
        WHERE h.rank <= :per_subscription - COALESCE(b.n, 0)
        ORDER BY h.seq LIMIT :limit
    ), locked AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.id IN (SELECT id FROM picked) AND d.state = 'pending'
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET state = 'delivering', attempts = d.attempts + 1, claim_id = gen_random_uuid(),
        claimed_at = now(), updated_at = now()
    FROM locked, webhook_subscriptions s
    WHERE d.id = locked.id AND s.id = d.subscription_id
    RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.body, d.attempts,
        d.claim_id, s.url, s.secret,
        EXTRACT(EPOCH FROM d.give_up_at - now())::float8 AS remaining_seconds, d.seq
    """
)

_DELIVERED = text(
    "UPDATE webhook_deliveries SET state = 'delivered', last_status = :status,"
    " last_error = NULL, claim_id = NULL, delivered_at = now(), updated_at = now()"
    " WHERE id = :id AND claim_id = :claim_id AND state = 'delivering'"
)
_RETRY = text(
    "UPDATE webhook_deliveries SET state = 'pending', last_status = :status,"
    " last_error = :error, claim_id = NULL,"
    " next_attempt_at = now() + make_interval(secs => :delay), updated_at = now()"
    " WHERE id = :id AND claim_id = :claim_id AND state = 'delivering'"
)
_FAILED = text(
    "UPDATE webhook_deliveries SET state = 'failed', last_status = :status,"
    " last_error = :error, claim_id = NULL, updated_at = now()"
    " WHERE id = :id AND claim_id = :claim_id AND state = 'delivering'"
)
_DISABLE = text(
    "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = :reason,"
    " updated_at = now() WHERE id = :id"
)
# A plain UPDATE (no SKIP LOCKED): if the owner is settling the row right now, this waits,
# re-reads `state` and leaves it alone.
_REQUEUE = text(
    "UPDATE webhook_deliveries SET state = 'pending', claim_id = NULL, next_attempt_at = now(),"
    " last_error = 'dispatcher lost mid-call: delivering again', updated_at = now()"
    " WHERE state = 'delivering' AND claimed_at < now() - make_interval(secs => :lease)"
)


# Delivered rows are history: kept a while for the deliveries list, then dropped in batches.
# Dead letters stay until redelivered or their subscription is deleted.
_FORGET = text(
    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
    " WHERE state = 'delivered' AND delivered_at < now() - make_interval(secs => :keep)"
    " LIMIT :limit)"
)


async def forget_delivered(conn: AsyncConnection, keep_seconds: float, limit: int = 1000) -> int:
    return (await conn.execute(_FORGET, {"keep": keep_seconds, "limit": limit})).rowcount


async def claim(conn: AsyncConnection, limit: int, per_subscription: int) -> list[Claimed]:
    if limit <= 0:
        return []
    rows = await conn.execute(_CLAIM, {"limit": limit, "per_subscription": per_subscription})
    return [
        Claimed(
            id=r.id,
            subscription_id=r.subscription_id,
            event_id=r.event_id,
            event_type=r.event_type,
            body=bytes(r.body),
            attempt=r.attempts,
            claim_id=r.claim_id,
            url=r.url,
            secret=r.secret,
            remaining_seconds=r.remaining_seconds,
        )
        for r in sorted(rows, key=lambda r: r.seq)
    ]


def _guard(claimed: Claimed) -> dict[str, Any]:
    return {"id": claimed.id, "claim_id": claimed.claim_id}


async def mark_delivered(conn: AsyncConnection, claimed: Claimed, status: int) -> bool:
    return (await conn.execute(_DELIVERED, {**_guard(claimed), "status": status})).rowcount > 0


async def retry_later(
    conn: AsyncConnection, claimed: Claimed, delay: float, error: str, status: int | None
) -> bool:
    values = {**_guard(claimed), "delay": delay, "error": error[:2000], "status": status}
    return (await conn.execute(_RETRY, values)).rowcount > 0


async def mark_failed(
    conn: AsyncConnection, claimed: Claimed, error: str, status: int | None
) -> bool:
    values = {**_guard(claimed), "error": error[:2000], "status": status}
    return (await conn.execute(_FAILED, values)).rowcount > 0


async def disable(conn: AsyncConnection, subscription_id: uuid.UUID, reason: str) -> None:
    await conn.execute(_DISABLE, {"id": subscription_id, "reason": reason})


async def requeue_expired(conn: AsyncConnection, lease_seconds: float) -> int:
    return (await conn.execute(_REQUEUE, {"lease": lease_seconds})).rowcount


# -- the dead-letter list and redelivery (the API) ----------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    subscription_id: uuid.UUID,
    state: str | None,
    before_seq: int | None,
    limit: int,
) -> Sequence[Row]:
    """Newest first."""
    sql = f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE subscription_id = :sub"
    if state is not None:
        sql += " AND state = :state"
    if before_seq is not None:
        sql += " AND seq < :before"
    sql += " ORDER BY seq DESC LIMIT :limit"
    params = {"sub": subscription_id, "state": state, "before": before_seq, "limit": limit}
    return (await conn.execute(text(sql), params)).all()


async def get_delivery(
    conn: AsyncConnection, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> Row | None:
    sql = f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE id = :id AND subscription_id = :sub"
    return (await conn.execute(text(sql), {"id": delivery_id, "sub": subscription_id})).first()


async def redeliver(
    conn: AsyncConnection,
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    retry_for_seconds: float,
) -> Row | None:
    """Queue a delivery again, due now, with a fresh retry window; None while it is in flight
    (or when there is no such delivery)."""
    sql = (
        "UPDATE webhook_deliveries SET state = 'pending', claim_id = NULL,"
        " next_attempt_at = now(), give_up_at = now() + make_interval(secs => :retry_for),"
        " updated_at = now() WHERE id = :id AND subscription_id = :sub"
        f" AND state <> 'delivering' RETURNING {_DELIVERY}"
    )
    params = {"id": delivery_id, "sub": subscription_id, "retry_for": retry_for_seconds}
    return (await conn.execute(text(sql), params)).first()
