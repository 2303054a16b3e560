"""Hot-path statements: compiled once, handed to the driver on a pooled connection.

SQLAlchemy's execution of a Core statement (connection wrapper, compiled-cache lookup, parameter
and result processing) costs about 70 µs of CPU per statement on this machine, more than
PostgreSQL takes to answer a primary-key read. The one statement each of refresh, userinfo and
introspection runs (and those of a password login: the account's row with its webhooks, the
session with its audit event) is therefore compiled once for the engine's dialect and executed by psycopg2
directly, which takes named parameters and returns the Python values the columns' types mean
(timestamps with their zone, booleans), so nothing is lost. Other drivers (SQLite's, which
returns dates as strings) run the statement through SQLAlchemy as usual. On the direct path the
parameters are not processed by the columns' types: a JSON value is passed serialised.

A write whose loss in a crash of the database server costs little (a refresh token's rotation:
see `SessionStatements`) may be committed without waiting for the write-ahead log's flush: on
PostgreSQL the statement is sent as `SET LOCAL synchronous_commit TO off; <statement>`, one
simple query, hence one implicit transaction, so the setting ends with it and the pooled
connection is left as it was.

On PostgreSQL each statement is also prepared once per connection (`PREPARE`, then `EXECUTE` with
the values): the server then skips parsing and planning, a third of its work for a login's three
statements (0.66 against 0.45 ms of its CPU, measured with pgbench). A pooler that moves a client
between server connections (PgBouncer in transaction mode) loses them: DATABASE_URL's
`pgbouncer=true` switches them off, and a statement found missing on its connection switches them
off by itself for the rest of the process, with a warning.

Errors keep SQLAlchemy's form (`sqlalchemy.exc.DBAPIError` subclasses), and a dropped connection
renews the pool as SQLAlchemy's own execution does, so the request after a database restart works.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import namedtuple
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

log = logging.getLogger(__name__)

ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off; "
SERVER_PREPARE = "idp_server_prepare"  # an execution option of the autocommit engine: prepare its hot statements
PREPARED = "idp.prepared"  # a pooled connection's info: the names of the statements prepared on it
_PLACEHOLDER = re.compile(r"(?<!%)%\((\w+)\)s")
_names = itertools.count(1)


class HotStatement:
    """One statement that returns at most one row, on an autocommit engine."""

    def __init__(self, engine: Engine, statement: Executable, *, wait_for_flush: bool = True) -> None:
        self._engine = engine
        self._statement = statement
        #: sent to psycopg2 directly (PostgreSQL); otherwise executed by SQLAlchemy on the engine
        self.direct = engine.dialect.driver == "psycopg2"
        self.sql = str(statement.compile(dialect=engine.dialect))  # type: ignore[attr-defined]
        # only the direct psycopg2 path sends the prefix; SQLite (through SQLAlchemy) has no such setting
        self.waits_for_flush = wait_for_flush or not self.direct
        self._name: str | None = None  # its name where it is prepared on each connection
        if self.direct and engine.get_execution_options().get(SERVER_PREPARE):
            self._name = f"idp_hot_{next(_names)}"
            self._prepare, self._execute = prepared_forms(self._name, self.sql)
            if not self.waits_for_flush:
                self._execute = f"{ASYNC_COMMIT}{self._execute}"
        if not self.waits_for_flush:
            self.sql = f"{ASYNC_COMMIT}{self.sql}"
        self._row: Any = None  # the namedtuple type of its rows, made from the first answer

    def first(self, params: dict[str, Any]) -> Any | None:
        """The first row (attributes named like the columns), or None."""
        rows = self._run(params, everything=False)
        return rows[0] if rows else None

    def all(self, params: dict[str, Any]) -> list[Any]:
        """Every row (attributes named like the columns)."""
        return self._run(params, everything=True)

    def _run(self, params: dict[str, Any], *, everything: bool) -> list[Any]:
        if not self.direct:
            with self._engine.connect() as core:
                result = core.execute(self._statement, params)
                return list(result.all() if everything else result.fetchmany(1))
        connection: Any = self._engine.raw_connection()
        try:
            try:
                names, values = self._fetch(connection, params, everything)
            except self._engine.dialect.loaded_dbapi.Error as exc:
                if not self._lost_prepared(exc):
                    raise
                names, values = self._fetch(connection, params, everything)  # unprepared now
            if not connection.dbapi_connection.autocommit:  # an engine without isolation_level=AUTOCOMMIT
                connection.commit()
        except self._engine.dialect.loaded_dbapi.Error as exc:
            self._failed(connection, exc, params)
        finally:
            connection.close()
        if not values:
            return []
        if self._row is None:
            self._row = namedtuple("Row", [column[0] for column in names])  # type: ignore[misc]
        return [self._row(*row) for row in values]

    def _fetch(self, connection: Any, params: dict[str, Any], everything: bool) -> tuple[Any, list[Any]]:
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql_on(connection, cursor), params)
            names = cursor.description
            if names is None:
                return None, []
            return names, cursor.fetchall() if everything else cursor.fetchmany(1)
        finally:
            cursor.close()

    def _sql_on(self, connection: Any, cursor: Any) -> str:
        """What to send on this pooled connection: the statement, or the EXECUTE of its prepared
        form, prepared first (one more round trip) on a connection that has not seen it yet."""
        if self._name is None:
            return self.sql
        prepared: set[str] = connection.info.setdefault(PREPARED, set())
        if self._name not in prepared:
            cursor.execute(self._prepare)
            prepared.add(self._name)
        return self._execute

    def _lost_prepared(self, exc: Any) -> bool:
        """A prepared statement missing where it was prepared: a pooler in transaction mode hands
        each statement to another server connection. From now on this statement runs unprepared."""
        if self._name is None or getattr(exc, "pgcode", None) != "26000":  # invalid_sql_statement_name
            return False
        log.warning(
            "prepared statement %s was missing on its connection (a pooler in transaction mode?): running it "
            "unprepared from now on; pgbouncer=true in DATABASE_URL says so from the start", self._name
        )
        self._name = None
        return True

    def _failed(self, connection: Any, exc: Any, params: dict[str, Any]) -> None:
        dialect = self._engine.dialect
        dropped = dialect.is_disconnect(exc, connection.dbapi_connection, None)
        if dropped:
            connection.invalidate(exc)
            self._engine.dispose(close=False)  # the others were dropped too: a new pool
        raise DBAPIError.instance(
            self.sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
        ) from exc


def prepared_forms(name: str, sql: str) -> tuple[str, str]:
    """`PREPARE name AS …` (with `$1`, `$2`… for the named parameters, sent without values) and the
    `EXECUTE name(…)` that passes the values by name (psycopg2 interpolates it)."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    body = _PLACEHOLDER.sub(number, sql).replace("%%", "%")  # sent without values: no escaping
    arguments = ", ".join(f"%({parameter})s" for parameter in order)
    return f"PREPARE {name} AS {body}", f"EXECUTE {name}({arguments})" if order else f"EXECUTE {name}"
