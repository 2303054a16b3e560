"""Hot-path statements: compiled once, handed to the driver on a pooled connection.

SQLAlchemy's execution of a Core statement (connection wrapper, compiled-cache lookup, parameter
and result processing) costs about 70 µs of CPU per statement on this machine, more than
PostgreSQL takes to answer a primary-key read. The one statement each of refresh, userinfo and
introspection runs is therefore compiled once for the engine's dialect and executed by psycopg2
directly, which takes named parameters and returns the Python values the columns' types mean
(timestamps with their zone, booleans), so nothing is lost. Other drivers (SQLite's, which
returns dates as strings) run the statement through SQLAlchemy as usual.

A write whose loss in a crash of the database server costs little (a refresh token's rotation:
see `SessionStatements`) may be committed without waiting for the write-ahead log's flush: on
PostgreSQL the statement is sent as `SET LOCAL synchronous_commit TO off; <statement>`, one
simple query, hence one implicit transaction, so the setting ends with it and the pooled
connection is left as it was.

Errors keep SQLAlchemy's form (`sqlalchemy.exc.DBAPIError` subclasses), and a dropped connection
renews the pool as SQLAlchemy's own execution does, so the request after a database restart works.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off; "


class HotStatement:
    """One statement that returns at most one row, on an autocommit engine."""

    def __init__(self, engine: Engine, statement: Executable, *, wait_for_flush: bool = True) -> None:
        self._engine = engine
        self._statement = statement
        self._direct = engine.dialect.driver == "psycopg2"
        self._sql = str(statement.compile(dialect=engine.dialect))  # type: ignore[attr-defined]
        # only the direct psycopg2 path sends the prefix; SQLite (through SQLAlchemy) has no such setting
        self.waits_for_flush = wait_for_flush or not self._direct
        if not self.waits_for_flush:
            self._sql = f"{ASYNC_COMMIT}{self._sql}"
        self._row: Any = None  # the namedtuple type of its rows, made from the first answer

    def first(self, params: dict[str, Any]) -> Any | None:
        """The first row (attributes named like the columns), or None."""
        if not self._direct:
            with self._engine.connect() as core:
                return core.execute(self._statement, params).first()
        connection: Any = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, params)
                values = cursor.fetchone() if cursor.description else None
                names = cursor.description
            finally:
                cursor.close()
            if not connection.dbapi_connection.autocommit:  # an engine without isolation_level=AUTOCOMMIT
                connection.commit()
        except self._engine.dialect.loaded_dbapi.Error as exc:
            self._failed(connection, exc, params)
        finally:
            connection.close()
        if values is None:
            return None
        if self._row is None:
            self._row = namedtuple("Row", [column[0] for column in names])  # type: ignore[misc]
        return self._row(*values)

    def _failed(self, connection: Any, exc: Any, params: dict[str, Any]) -> None:
        dialect = self._engine.dialect
        dropped = dialect.is_disconnect(exc, connection.dbapi_connection, None)
        if dropped:
            connection.invalidate(exc)
            self._engine.dispose(close=False)  # the others were dropped too: a new pool
        raise DBAPIError.instance(
            self._sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
        ) from exc
