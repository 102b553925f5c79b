"""Readiness: can this instance reach what it needs (the database, and Redis if configured)?"""

from __future__ import annotations

from sqlalchemy import text

from voting.extensions import db, redis_client


def check() -> dict[str, str]:
    """Each dependency's state, "ok" or "unreachable"; Redis only when it is configured."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    finally:
        db.session.rollback()  # a read-only probe: end its transaction
    client = redis_client.get()
    if client is not None:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "unreachable"
    return checks
