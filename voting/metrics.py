"""Prometheus metrics: what is counted, and the text /metrics serves (every gunicorn worker's).

Under gunicorn every worker is a process of its own, so the counters use prometheus_client's
multiprocess mode: gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh folder before
the workers start, each worker writes its values there, and exposition() adds them up. Without
that variable (tests, `voting demo`) the values are this process's.

Labels never hold anything a voter sent: routes are the URL rule (`/v/<token>`, never the
token), reasons are our own error codes, and no count of a poll's results is kept here at all.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from flask import has_request_context
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from voting.domain.errors import VotingError

P = ParamSpec("P")
R = TypeVar("R")

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks where values live (memory, or files for multiprocess mode) when it
# is imported; decide how to read them at the same moment, whatever the environment says later.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_VARIABLE))

REQUESTS = Counter(
    "voting_http_requests",
    "HTTP answers, by route (the URL rule), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "voting_http_request_duration_seconds",
    "Time from the request reaching the app to its answer (a stream: to its first byte).",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BALLOTS = Counter(
    "voting_ballots",
    "Ballots accepted (reason: new or revote) and refused (reason: the error code).",
    ["outcome", "reason"],
)
STREAMS_OPEN = Gauge(
    "voting_live_streams_open",
    "Event streams open now (viewers of results, overlays and consoles).",
    multiprocess_mode="livesum",
)
SNAPSHOTS_PUBLISHED = Counter(
    "voting_live_snapshots_published",
    "Live snapshots published after a change (via: redis, or process without Redis).",
    ["via"],
)
EVENTS_DELIVERED = Counter(
    "voting_live_events_delivered",
    "Events written to open streams, by kind (tally, heartbeat, revoked).",
    ["event"],
)
POOL_WAIT = Histogram(
    "voting_db_pool_wait_seconds",
    "Time a transaction waited for its database connection (pool checkout and connect).",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
UNAVAILABLE = Counter(
    "voting_unavailable_answers",
    "503 answers, by reason: busy (every pooled connection stayed taken), "
    "database_unavailable, storage_full.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "voting_rate_limited",
    "Requests refused with 429 by a rate limit, by route.",
    ["route"],
)
REDIS_UP = Gauge(
    "voting_redis_up",
    "1 when Redis answered a PING at the last scrape; 0 when not, or none is configured.",
    multiprocess_mode="mostrecent",
)

# What cast_ballot made of this request's ballot, for the web layer to count with the answer.
_ballot_outcome: ContextVar[tuple[str, str] | None] = ContextVar(
    "voting_ballot_outcome", default=None
)
_inside_cast: ContextVar[bool] = ContextVar("voting_inside_cast", default=False)


def refusal_reason(exc: BaseException) -> str:
    """The reason label for a ballot that raised `exc`."""
    if isinstance(exc, VotingError):
        return exc.code
    if isinstance(exc, PoolTimeout):
        return "busy"
    if isinstance(exc, OperationalError):
        return unavailable_reason(exc)
    return "server_error"


def unavailable_reason(exc: OperationalError) -> str:
    """storage_full when the database says its disk is full, busy when it is locked, else
    database_unavailable (it cannot be reached)."""
    text = str(exc.orig if exc.orig is not None else exc).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return "storage_full"
    if "database is locked" in text:
        return "busy"
    return "database_unavailable"


def counting_ballots(cast: Callable[P, R]) -> Callable[P, R]:
    """Wrap the service that casts: count each call once, accepted or refused with its reason."""

    @functools.wraps(cast)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if _inside_cast.get():  # the service retrying itself: the outer call counts
            return cast(*args, **kwargs)
        marker = _inside_cast.set(True)
        outcome, reason = "refused", "server_error"
        try:
            result = cast(*args, **kwargs)
            outcome = "accepted"
            reason = "revote" if getattr(result, "replaced", False) else "new"
            return result
        except BaseException as exc:
            reason = refusal_reason(exc)
            raise
        finally:
            _inside_cast.reset(marker)
            if has_request_context():
                _ballot_outcome.set((outcome, reason))  # counted with the answer
            else:
                BALLOTS.labels(outcome, reason).inc()

    return run


def start_request() -> None:
    """Forget the last request's ballot outcome (threads serve many requests)."""
    _ballot_outcome.set(None)


def count_ballot_answer(status: int, error_code: str | None) -> None:
    """Count a ballot request once, by its answer: what cast_ballot made of it, unless a limit
    turned it into a 429 afterwards, or else the error that stopped it before the service."""
    found = _ballot_outcome.get()
    if status == 429:
        found = ("refused", "rate_limited")
    elif found is None:
        found = ("refused", error_code or str(status))
    _ballot_outcome.set(None)
    BALLOTS.labels(*found).inc()


def _transaction_created(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info["voting.metrics.tx_started"] = time.perf_counter()


def _transaction_began(session: Session, _transaction: Any, _connection: Any) -> None:
    started = session.info.pop("voting.metrics.tx_started", None)
    if started is not None:
        POOL_WAIT.observe(time.perf_counter() - started)


def watch_pool() -> None:
    """Time every session's wait for its connection: from the transaction's start to BEGIN."""
    if not event.contains(Session, "after_transaction_create", _transaction_created):
        event.listen(Session, "after_transaction_create", _transaction_created)
        event.listen(Session, "after_begin", _transaction_began)


def exposition() -> bytes:
    """The metrics in Prometheus' text format: every worker's under gunicorn, else ours."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))


def _samples() -> list[tuple[str, dict[str, str], float]]:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return [
        (sample.name, sample.labels, sample.value)
        for family in registry.collect()
        for sample in family.samples
    ]


def figures() -> dict[str, float]:
    """The few numbers the console shows: server errors, refusals, open viewers, since start."""
    totals = {"server_errors": 0.0, "unavailable": 0.0, "rate_limited": 0.0, "streams_open": 0.0}
    for name, labels, value in _samples():
        if name == "voting_http_requests_total" and labels.get("status", "").startswith("5"):
            totals["server_errors"] += value
        elif name == "voting_unavailable_answers_total":
            totals["unavailable"] += value
        elif name == "voting_rate_limited_total":
            totals["rate_limited"] += value
        elif name == "voting_live_streams_open":
            totals["streams_open"] += value
    return totals
