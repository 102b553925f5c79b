"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from voting.extensions import db, limiter, redis_client

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz() -> ResponseReturnValue:
    """The process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz() -> ResponseReturnValue:
    """The database answers, and Redis too when it is configured."""
    checks: dict[str, str] = {}
    ok = True
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        ok = False
    finally:
        db.session.rollback()
    client = redis_client.get()
    if client is not None:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "unreachable"
            ok = False
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
