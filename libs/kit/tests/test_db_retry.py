"""The one retryable-error classifier and the transaction-retry helper, against errors the real
Postgres raises: a serialization failure, a deadlock, a refused connection, a constraint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openlines.kit.db.engine import create_engine
from openlines.kit.db.retry import (
    is_infrastructure_error,
    is_retryable,
    is_transaction_conflict,
    run_in_transaction,
)
from openlines.kit.embedded import reserve_port

T = TypeVar("T")


@pytest.fixture
async def accounts(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL)"))
        await conn.execute(text("INSERT INTO account VALUES (1, 100), (2, 100)"))
    yield engine


async def _take_snapshot(conn: AsyncConnection) -> None:
    """Repeatable read, fixed by a first read of the row."""
    await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    await conn.execute(text("SELECT balance FROM account WHERE id = 1"))


async def _moved_by_another(engine: AsyncEngine, by: int = 1) -> None:
    """Another transaction changes the row after the snapshot was taken."""
    async with engine.begin() as other:
        await other.execute(
            text("UPDATE account SET balance = balance + :by WHERE id = 1"), {"by": by}
        )


async def _serialization_failure(engine: AsyncEngine) -> DBAPIError:
    """A repeatable-read transaction updates a row another one changed since its snapshot."""
    async with engine.connect() as mine:
        await mine.begin()
        await _take_snapshot(mine)
        await _moved_by_another(engine)
        with pytest.raises(DBAPIError) as caught:
            await mine.execute(text("UPDATE account SET balance = balance - 1 WHERE id = 1"))
        await mine.rollback()
    return caught.value


async def test_a_serialization_failure_is_a_transaction_conflict(accounts: AsyncEngine) -> None:
    exc = await _serialization_failure(accounts)
    assert isinstance(exc.orig, psycopg.errors.SerializationFailure)
    assert exc.orig.sqlstate == "40001"
    for error in (exc, exc.orig):  # as SQLAlchemy raises it, and as psycopg does
        assert is_transaction_conflict(error)
        assert is_retryable(error)
        assert not is_infrastructure_error(error)


async def test_a_deadlock_is_a_transaction_conflict(accounts: AsyncEngine) -> None:
    async with accounts.connect() as a, accounts.connect() as b:
        await a.begin()
        await b.begin()
        await a.execute(text("UPDATE account SET balance = 0 WHERE id = 1"))
        await b.execute(text("UPDATE account SET balance = 0 WHERE id = 2"))

        async def cross(conn: AsyncConnection, row: int) -> BaseException | None:
            try:
                await conn.execute(
                    text("UPDATE account SET balance = 1 WHERE id = :id"), {"id": row}
                )
            except DBAPIError as exc:
                await conn.rollback()  # frees the other transaction's way
                return exc
            return None

        # Each waits for the row the other holds: Postgres aborts exactly one of them.
        outcomes = await asyncio.gather(cross(a, 2), cross(b, 1))
        for conn in (a, b):
            if conn.in_transaction():
                await conn.rollback()
    errors = [exc for exc in outcomes if exc is not None]
    assert len(errors) == 1
    (exc,) = errors
    assert isinstance(exc, DBAPIError)
    assert isinstance(exc.orig, psycopg.errors.DeadlockDetected)
    assert is_transaction_conflict(exc) and is_transaction_conflict(exc.orig)
    assert is_retryable(exc) and not is_infrastructure_error(exc)


async def test_a_refused_connection_is_an_infrastructure_error(db_schema: str) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{reserve_port()}/postgres"  # nothing listens
    engine = create_engine(closed, db_schema, pool_size=1)
    try:
        with pytest.raises(OperationalError) as caught:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    with pytest.raises(psycopg.OperationalError) as raw:
        await psycopg.AsyncConnection.connect(closed, connect_timeout=5)
    errors: list[BaseException | None] = [caught.value, caught.value.orig, raw.value]
    for error in errors:
        assert error is not None
        assert is_infrastructure_error(error)
        assert is_retryable(error)
        assert not is_transaction_conflict(error)


async def test_a_constraint_violation_is_not_retryable(accounts: AsyncEngine) -> None:
    with pytest.raises(IntegrityError) as caught:
        async with accounts.begin() as conn:
            await conn.execute(text("INSERT INTO account VALUES (1, 0)"))
    assert isinstance(caught.value.orig, psycopg.errors.UniqueViolation)
    assert not is_retryable(caught.value)
    assert not is_infrastructure_error(caught.value)


class _Counted(Generic[T]):
    """A transaction body that counts its runs, and is told which run this is."""

    def __init__(self, body: Callable[[AsyncConnection, int], Awaitable[T]]) -> None:
        self.body = body
        self.runs = 0

    async def __call__(self, conn: AsyncConnection) -> T:
        self.runs += 1
        return await self.body(conn, self.runs)


async def test_run_in_transaction_runs_a_conflicted_transaction_again(
    accounts: AsyncEngine,
) -> None:
    async def withdraw(conn: AsyncConnection, run: int) -> int:
        await _take_snapshot(conn)
        if run == 1:  # someone else moves the row under the first attempt's snapshot
            await _moved_by_another(accounts, by=10)
        result = await conn.execute(
            text("UPDATE account SET balance = balance - 1 WHERE id = 1 RETURNING balance")
        )
        return int(result.scalar_one())

    body = _Counted(withdraw)
    assert await run_in_transaction(accounts, body, attempts=3) == 109
    assert body.runs == 2


async def test_run_in_transaction_gives_up_after_its_attempts(accounts: AsyncEngine) -> None:
    async def always_beaten(conn: AsyncConnection, run: int) -> None:
        await _take_snapshot(conn)
        await _moved_by_another(accounts)
        await conn.execute(text("UPDATE account SET balance = 0 WHERE id = 1"))

    body = _Counted(always_beaten)
    with pytest.raises(DBAPIError) as caught:
        await run_in_transaction(accounts, body, attempts=2)
    assert is_transaction_conflict(caught.value)
    assert body.runs == 2


async def test_run_in_transaction_does_not_repeat_other_errors(accounts: AsyncEngine) -> None:
    async def duplicate(conn: AsyncConnection, run: int) -> None:
        await conn.execute(text("INSERT INTO account VALUES (2, 0)"))

    body = _Counted(duplicate)
    with pytest.raises(IntegrityError):
        await run_in_transaction(accounts, body, attempts=5)
    assert body.runs == 1
