"""Which SQL statements the app sends to the database: SQLAlchemy's (every engine, via its events)
and the hot-path statements `idp.statements.HotStatement` hands to psycopg2 directly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event

from idp.statements import HotStatement


@contextlib.contextmanager
def statements_run() -> Iterator[list[str]]:
    """The SQL statements any engine runs inside the block, in order, with "BEGIN", "COMMIT" and
    "ROLLBACK" where SQLAlchemy opens and ends a transaction (psycopg2 sends the BEGIN with the
    transaction's first statement; a connection in autocommit mode sends none of the three)."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    def ends(name: str) -> Any:
        def record_end(conn: Any, *args: Any) -> None:
            if not _autocommit(conn.connection.dbapi_connection):
                seen.append(name)

        return record_end

    transaction_events = [(name.lower(), ends(name)) for name in ("BEGIN", "COMMIT", "ROLLBACK")]

    run = HotStatement._run

    def run_recorded(self: HotStatement, params: dict[str, Any], *, everything: bool) -> list[Any]:
        if self.direct:  # SQLAlchemy's events see the other path
            seen.append(self.sql)
        return run(self, params, everything=everything)

    event.listen(Engine, "before_cursor_execute", record)
    for name, listener in transaction_events:
        event.listen(Engine, name, listener)
    HotStatement._run = run_recorded  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        HotStatement._run = run  # type: ignore[method-assign]
        event.remove(Engine, "before_cursor_execute", record)
        for name, listener in transaction_events:
            event.remove(Engine, name, listener)


def _autocommit(dbapi_connection: Any) -> bool:
    """psycopg2's flag, or sqlite3's isolation level of None."""
    return getattr(dbapi_connection, "autocommit", False) is True or getattr(dbapi_connection, "isolation_level", "") is None
