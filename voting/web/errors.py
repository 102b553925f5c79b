"""Domain errors and HTTP errors become JSON for the API and a page for people."""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, SecurityError

from voting import metrics
from voting.domain.errors import AlreadyVoted, VotingError
from voting.extensions import limiter
from voting.web.protocol import ask_to_retry

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: ("invalid_request", "The request is not valid."),
    401: ("unauthorized", "Please log in first."),
    403: ("forbidden", "You are not allowed to do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that kind of request."),
    413: ("too_large", "The upload is too large."),
    415: ("invalid_request", "Send the body as JSON (Content-Type: application/json)."),
    429: ("rate_limited", "Too many requests. Please wait a moment and try again."),
    500: ("server_error", "Something went wrong on our side. Please try again."),
    503: ("busy", "The service is very busy right now. Please try again in a few seconds."),
}
# Seconds a client is asked to wait when every database connection stayed busy.
BUSY_RETRY_AFTER = 3
# The database could not be reached or could not store anything (its disk is full): what a
# person is told, and how long a client is asked to wait. Nothing was written (the
# transaction never committed), so trying again is always safe.
UNAVAILABLE = {
    "database_unavailable": (
        "Votes cannot be recorded right now: our database is not answering. Nothing was "
        "recorded; please try again in a few seconds.",
        5,
    ),
    "storage_full": (
        "Votes cannot be recorded right now: the server has no room left to store them. "
        "Nothing was recorded; please try again in a minute.",
        60,
    ),
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _host_refused() -> bool:
    """The Host header is outside TRUSTED_HOSTS: no link can be built for this request."""
    try:
        return not request.host
    except SecurityError:
        return True


def error_response(status: int, code: str, message: str, **extra: object) -> ResponseReturnValue:
    g.error_code = code  # the ballot metrics' refusal reason (voting.web.observability)
    # A page builds links (url_for), which a refused Host cannot; JSON needs none.
    if wants_json() or _host_refused():
        body = {"error": code, "message": message, **extra}
        return jsonify(body), status
    return render_template("error.html", status=status, code=code, message=message, **extra), status


def retry_after_seconds() -> int:
    """Seconds until the breached limit's window resets (at least 1, at most the window)."""
    try:
        current = limiter.current_limit
        reset_at = current.reset_at if current is not None else None
        window = current.limit.get_expiry() if current is not None else 60
    except Exception:  # storage unreachable: a guess beats no header at all
        reset_at, window = None, 60
    if reset_at is None:
        return 60
    # flask-limiter rounds reset_at up by a second; a client need never wait past the window.
    return max(1, min(window, math.ceil(reset_at - time.time())))


def register(app: Flask) -> None:
    @app.errorhandler(VotingError)
    def _domain(exc: VotingError) -> ResponseReturnValue:
        extra: dict[str, object] = {}
        if isinstance(exc, AlreadyVoted) and exc.receipt:
            extra["receipt"] = exc.receipt
        return error_response(exc.status, exc.code, exc.message, **extra)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        return error_response(
            400,
            "csrf_failed",
            "This form has expired or did not come from this site. Reload the page and try again.",
        )

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded) -> ResponseReturnValue:
        g.error_code = "rate_limited"
        metrics.RATE_LIMITED.labels(
            request.url_rule.rule if request.url_rule else "unmatched"
        ).inc()
        wait = retry_after_seconds()
        unit = "second" if wait == 1 else "seconds"
        message = f"Too many tries from this connection. Please wait {wait} {unit} and try again."
        login = request.endpoint == "admin.login"
        if login:
            span = f"{math.ceil(wait / 60)} minutes" if wait >= 120 else f"{wait} {unit}"
            message = (
                f"Too many failed sign-ins for this account from devices it has not signed in "
                f"on before. Sign in from a device you have used before, wait {span}, "
                "or ask the operator to run `voting admin unlock USERNAME`."
            )
        if wants_json():
            response = jsonify(error="rate_limited", message=message, retry_after=wait)
        elif login:  # the login form again, with the reason above it
            response = app.make_response(render_template("admin/login.html", error=message))
        else:
            response = app.make_response(
                render_template("rate_limited.html", wait=wait, message=message)
            )
        response.status_code = 429
        return ask_to_retry(response, wait)

    @app.errorhandler(PoolTimeout)
    def _busy(exc: PoolTimeout) -> ResponseReturnValue:
        # Every pooled connection stayed busy for pool_timeout (DATABASE_POOL_SIZE in
        # config.py). A ballot waits at its first statement, before anything is written; a
        # retry that finds it recorded after all gets 409 already_voted with the receipt.
        log.warning("database pool exhausted on %s %s", request.method, request.url_rule)
        metrics.UNAVAILABLE.labels("busy").inc()
        code, message = HTTP_CODES[503]
        return ask_to_retry(app.make_response(error_response(503, code, message)), BUSY_RETRY_AFTER)

    @app.errorhandler(OperationalError)
    def _unavailable(exc: OperationalError) -> ResponseReturnValue:
        # PostgreSQL stopped or unreachable, SQLite's disk full: the transaction did not
        # commit. SQLAlchemy has already dropped the pool's stale connections, so the first
        # request after the database returns gets a fresh one (no restart needed).
        reason = metrics.unavailable_reason(exc)
        metrics.UNAVAILABLE.labels(reason).inc()
        if reason == "busy":
            code, message = HTTP_CODES[503]
            wait = BUSY_RETRY_AFTER
        else:
            code, (message, wait) = reason, UNAVAILABLE[reason]
        log.error("%s on %s %s: %s", reason, request.method, request.url_rule, exc.orig)
        return ask_to_retry(app.make_response(error_response(503, code, message)), wait)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        code, message = HTTP_CODES.get(status, ("error", exc.description or "Error."))
        if isinstance(exc, SecurityError):  # a Host header outside TRUSTED_HOSTS
            message = "This site does not answer for that host name."
        if status == 413:
            limit = request.max_content_length or 0
            size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
            message = f"The request is too large: the limit is {size}."
        response = app.make_response(error_response(status, code, message))
        # The exception's own headers (a 405's Allow, which HTTP requires) outlive our body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.url_rule)
        code, message = HTTP_CODES[500]
        return error_response(500, code, message)
