"""Liveness, readiness and the Prometheus metrics (behind a bearer token)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from voting import metrics
from voting.extensions import limiter, redis_client
from voting.services import readiness

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
    checks = readiness.check()
    ok = all(state == "ok" for state in checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


@bp.get("/metrics")
@limiter.exempt
def metrics_text() -> ResponseReturnValue:
    """Prometheus metrics, only for `Authorization: Bearer $VOTING_METRICS_TOKEN`."""
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        abort(404)  # no token configured: there is no metrics endpoint
    sent = request.headers.get("Authorization", "")
    scheme, _, given = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), str(expected).encode()
    ):
        response = jsonify(error="unauthorized", message="Send the metrics bearer token.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    _probe_redis()
    return Response(metrics.exposition(), mimetype=None, content_type=metrics.CONTENT_TYPE)


def _probe_redis() -> None:
    client = redis_client.get()
    if client is None:
        return
    try:
        client.ping()
        metrics.REDIS_UP.set(1)
    except Exception:
        metrics.REDIS_UP.set(0)
