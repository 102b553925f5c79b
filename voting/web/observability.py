"""Per request: its id (X-Request-ID), its metrics, and optionally one JSON log line.

The id is the one a proxy sent (nginx: `proxy_set_header X-Request-ID $request_id`) when it
looks like an id, else a new one. Every answer echoes it and error pages show it, so an
attendee can quote it and an organizer can find the line in the logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, current_app, g, has_request_context, request
from werkzeug.wrappers import Response

from voting import metrics
from voting.logs import RedactingFilter, redact

REQUEST_ID_HEADER = "X-Request-ID"
_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# The routes that cast a ballot: a refusal before the service (429, bad JSON) is counted here.
BALLOT_ENDPOINTS = frozenset({"api.cast", "public.cast"})

request_log = logging.getLogger("voting.requests")


def request_id() -> str:
    """This request's id (made on first use, so it exists even for an early error)."""
    found = g.get("request_id")
    if found is None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        found = sent if _ID_RE.match(sent) else uuid.uuid4().hex
        g.request_id = found
    return str(found)


def instance_name() -> str:
    """This process, as logs name it: VOTING_INSTANCE_NAME, else host:pid."""
    return str(current_app.config.get("INSTANCE_NAME") or f"{socket.gethostname()}:{os.getpid()}")


def _route() -> str:
    # The URL rule, never the path: /v/<token> must not become a label or a log field.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _started() -> None:
    g.request_started = time.perf_counter()
    metrics.start_request()
    request_id()


def _finished(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    route = _route()
    metrics.REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    metrics.LATENCY.labels(route).observe(elapsed)
    if request.endpoint in BALLOT_ENDPOINTS:
        metrics.count_ballot_answer(response.status_code, g.get("error_code"))
    if current_app.config["LOG_JSON"]:
        _log_line(route, response.status_code, elapsed)
    return response


def _log_line(route: str, status: int, elapsed: float) -> None:
    line = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id(),
        "instance": instance_name(),
        "method": request.method,
        "route": route,
        "path": redact(request.path),
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
    }
    request_log.info(json.dumps(line, separators=(",", ":")))


def _template_values() -> dict[str, str]:
    # Templates are rendered outside requests too (the CLI's QR sheet).
    return {"request_id": request_id()} if has_request_context() else {}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configure_logger() -> None:
    if request_log.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False


def init_app(app: Flask) -> None:
    """Give every request an id, count it, and log it as JSON when VOTING_LOG_JSON is on."""
    app.before_request(_started)
    app.after_request(_finished)
    app.context_processor(_template_values)
    metrics.watch_pool()
    if app.config["LOG_JSON"]:
        _configure_logger()
