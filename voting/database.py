"""SQLite transaction control: write transactions begin IMMEDIATE, reads stay deferred.

PostgreSQL needs none of this; there the rules rely on row locks (see services.polls).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from voting.extensions import db

_next_begin_immediate: ContextVar[bool] = ContextVar("next_begin_immediate", default=False)


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Take over BEGIN from pysqlite so a write transaction can ask for the write lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if _next_begin_immediate.get():
            _next_begin_immediate.set(False)
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def reset_write_intent(_exc: BaseException | None = None) -> None:
    """Forget an unused begin_write() at the end of a request or app context."""
    _next_begin_immediate.set(False)


def begin_write() -> None:
    """Start the session's next transaction as a write transaction.

    On SQLite it begins IMMEDIATE: it waits (busy timeout) for the single write lock at
    BEGIN, instead of failing when a deferred reader later tries to write. Any read-only
    transaction already open is ended first.
    """
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        session.commit()
    _next_begin_immediate.set(True)
