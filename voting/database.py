"""Transactions: who ends them, and SQLite's write transactions that begin IMMEDIATE.

The rule: **services own the transaction.** A service that writes calls begin_write()
before its first statement and ends by committing. When it refuses (raises), nothing it
did stays pending: every such service is decorated with @atomic, which rolls the session
back before the error leaves it. Views never commit or roll back; they parse, call a
service, and render (or let voting.web.errors map the error to an answer).

PostgreSQL needs no BEGIN IMMEDIATE; there the rules rely on row locks (services.polls).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import psycopg
from flask import Flask, current_app
from psycopg.rows import namedtuple_row
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from voting import metrics
from voting.config import ROOT
from voting.extensions import db

P = ParamSpec("P")
R = TypeVar("R")

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


def autocommitted(sql: str, params: Mapping[str, Any]) -> list[Any]:
    """The rows of one statement run alone, in autocommit, on a pooled connection
    (PostgreSQL): one round trip, where a transaction costs three (BEGIN, the statement,
    ROLLBACK or COMMIT), and no ORM, not even SQLAlchemy's execution layer (the profiles in
    docs/benchmarks.md found each costing more than the statement).

    The rows are psycopg's named tuples, with the values as the driver gives them (no
    SQLAlchemy column types). A lost server invalidates the connection and raises
    SQLAlchemy's OperationalError, as any other query would (503 database_unavailable);
    the pool's timeout raises its TimeoutError (503 busy) before anything is sent.
    """
    started = time.perf_counter()
    try:
        conn = db.engine.raw_connection()
    except psycopg.OperationalError as exc:  # a raw connection's errors come unwrapped
        raise OperationalError(sql, params, exc) from exc
    metrics.POOL_WAIT.observe(time.perf_counter() - started)
    try:
        driver: Any = conn.driver_connection
        try:
            driver.autocommit = True
            with driver.cursor(row_factory=namedtuple_row) as cur:
                return list(cur.execute(sql, params).fetchall())
        except psycopg.OperationalError as exc:
            # The server went away: the connection never goes back to the pool.
            conn.invalidate(exc)
            raise OperationalError(sql, params, exc) from exc
        finally:
            if not driver.closed and not driver.broken:
                driver.autocommit = False
    finally:
        conn.close()  # back to the pool


def atomic(service: Callable[P, R]) -> Callable[P, R]:
    """A service entry point: if it raises, the session is rolled back before the error leaves."""

    @functools.wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            raise

    return run


def bind_migrations(app: Flask) -> None:
    """Bind Flask-Migrate (`voting db`, the demo, a test's schema) to the app, once.

    Only what migrates calls this: Flask-Migrate pulls in Alembic, about half a second of
    every process's start, and no request needs it, so a gunicorn worker never loads it."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate  # deferred: see above

    Migrate(app, db, directory=str(ROOT / "migrations"), compare_type=True)


def upgrade_schema() -> None:
    """Migrate the current app's database to the newest revision."""
    bind_migrations(current_app._get_current_object())  # type: ignore[attr-defined]
    from flask_migrate import upgrade  # deferred: see bind_migrations

    upgrade()
