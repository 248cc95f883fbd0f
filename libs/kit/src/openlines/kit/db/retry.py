"""Which errors are worth doing the same work again, and a transaction that is.

One classifier for the whole suite (consumers, relay, timers, the HTTP error mapping, command
endpoints, the outbound sender), so that an error means the same thing everywhere:
- a transaction conflict: Postgres rolled the transaction back because another one won (a
  deadlock or a serialization failure). Nothing is wrong: running it again succeeds;
- an infrastructure error: the database or the broker is unavailable. Retry later, and never
  treat the work as poison (dead-letter it, fail the command for good).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "TRANSACTION_CONFLICTS",
    "is_infrastructure_error",
    "is_retryable",
    "is_transaction_conflict",
    "run_in_transaction",
]

T = TypeVar("T")

# serialization_failure and deadlock_detected: the two SQLSTATEs Postgres documents as "retry
# the transaction". Not the rest of class 40: 40002 is a (deferred) constraint violation at
# commit, which fails again however often it is retried.
TRANSACTION_CONFLICTS = frozenset({"40001", "40P01"})


def is_transaction_conflict(exc: BaseException) -> bool:
    """Postgres rolled the transaction back because of another one: run it again at once."""
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return sqlstate in TRANSACTION_CONFLICTS


def is_infrastructure_error(exc: BaseException) -> bool:
    """The database or broker is unavailable: retry the work later, never dead-letter it."""
    if is_transaction_conflict(exc):
        return False
    if isinstance(exc, OperationalError | psycopg.OperationalError | KafkaError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_retryable(exc: BaseException) -> bool:
    """Worth doing the same work again: an outage, or a transaction another one beat."""
    return is_infrastructure_error(exc) or is_transaction_conflict(exc)


async def run_in_transaction(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 3,
) -> T:
    """`work(conn)` in one transaction, run again in a fresh one when it loses a transaction
    conflict, at most `attempts` times in all; any other error (and the last conflict) is
    raised. `work` must hold no state across attempts: each one starts from the database."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except Exception as exc:
            if attempt == attempts or not is_transaction_conflict(exc):
                raise
    raise AssertionError("unreachable")
