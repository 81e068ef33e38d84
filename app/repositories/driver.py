"""Statements run on the asyncpg connection under a session's transaction (PostgreSQL only).

SQLAlchemy's execution path (compiled-cache lookup, parameter processing, result wrapping,
greenlet hop) cost about 140 µs per statement on the benchmark machine: the ingest group runs
five of them, a third of an event's CPU. The group's hot statements after its first therefore
go straight to the driver, inside the transaction SQLAlchemy began (the first statement runs
through SQLAlchemy and starts it). Errors come back as SQLAlchemy's exception classes, so
callers (the duplicate retry on `IntegrityError`, the 503 on a lost database, the 422 on a
value PostgreSQL refuses) cannot tell the two paths apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncpg
from sqlalchemy import JSON
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.encoding import dumps

_DIALECT = PGDialect_asyncpg()


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A SQLAlchemy statement compiled once for asyncpg: its SQL text (`$1`, `$2`…) and how to
    turn named parameters into the driver's positional arguments, JSON values encoded as
    SQLAlchemy's JSON type encodes them (None as JSON `null`). One definition of the
    statement serves both paths."""

    text: str
    # (name, JSON-encoded, value when the statement carries one, e.g. a literal)
    params: tuple[tuple[str, bool, Any], ...]

    @classmethod
    def of(cls, statement: Any) -> DriverStatement:
        compiled = statement.compile(dialect=_DIALECT)
        binds = compiled.binds
        return cls(
            compiled.string,
            tuple(
                (name, isinstance(binds[name].type, JSON), binds[name].value)
                for name in compiled.positiontup
            ),
        )

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional arguments for one execution (`values` by parameter name)."""
        return tuple(
            (dumps(values[name]) if encode else values[name]) if name in values else default
            for name, encode, default in self.params
        )


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction, which must already have run a
    statement through SQLAlchemy (the driver's transaction starts with the first one)."""
    connection = await session.connection()
    raw: Any = (await connection.get_raw_connection()).driver_connection
    if raw is None or not raw.is_in_transaction():
        # Outside a transaction every statement would commit on its own.
        raise RuntimeError("driver statements run only after the transaction's first statement")
    return raw


def as_sqlalchemy_error(statement: str, error: Exception) -> Exception:
    """The SQLAlchemy exception SQLAlchemy itself would have raised for a driver `error`
    (parameters left out: they may hold personal data)."""
    state = getattr(error, "sqlstate", None) or ""
    cls: type[sa_exc.DBAPIError]
    if state.startswith("23"):
        cls = sa_exc.IntegrityError
    elif state.startswith("22"):
        cls = sa_exc.DataError
    elif state.startswith(("08", "57P")) or isinstance(
        error, asyncpg.InterfaceError | OSError | TimeoutError
    ):
        cls = sa_exc.OperationalError
    else:
        cls = sa_exc.DBAPIError
    return cls(statement, None, error)


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def _raise(session: AsyncSession, statement: str, error: Exception) -> NoReturn:
    """Raise `error` as SQLAlchemy would; a lost connection is invalidated first, as
    SQLAlchemy does on a disconnect, so the pool never hands it out again."""
    translated = as_sqlalchemy_error(statement, error)
    if isinstance(translated, sa_exc.OperationalError):
        with contextlib.suppress(Exception):  # best effort: the error below is what matters
            await (await session.connection()).invalidate()
        translated.connection_invalidated = True
    raise translated from error


async def run(session: AsyncSession, statement: str, *args: Any) -> None:
    """Execute `statement` once with positional `args`."""
    connection = await driver_connection(session)
    try:
        await connection.execute(statement, *args)
    except _DRIVER_ERRORS as error:
        await _raise(session, statement, error)


async def run_many(session: AsyncSession, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Execute `statement` once per row, in order, in one round trip."""
    connection = await driver_connection(session)
    try:
        await connection.executemany(statement, rows)
    except _DRIVER_ERRORS as error:
        await _raise(session, statement, error)


async def fetch(session: AsyncSession, statement: str, *args: Any) -> list[Any]:
    """The rows (asyncpg records: by column name, JSON already decoded by the connection's
    codec, timestamps aware) of `statement`."""
    connection = await driver_connection(session)
    try:
        return list(await connection.fetch(statement, *args))
    except _DRIVER_ERRORS as error:
        await _raise(session, statement, error)
