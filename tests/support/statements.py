"""Which SQL statements the app sends to the database (every engine, via SQLAlchemy's events)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine, event


@contextlib.contextmanager
def statements_run() -> Iterator[list[str]]:
    """The SQL statements any engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)
