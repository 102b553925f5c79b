"""Live results: a versioned snapshot cache, fan-out to event streams, and SSE formatting.

How a change reaches a stream:

- A service commits (a ballot, a lifecycle step) and calls notify(slug). In a request that
  only marks the poll dirty: this process's worker thread recomputes the snapshot from the
  database at most once per LIVE_MIN_INTERVAL seconds per poll, so a burst of ballots makes
  one snapshot, and casting never waits for Redis nor fails because of it. Outside a request
  (the CLI, a script) notify publishes before it returns, since the process may exit next.
- With Redis, the worker holds a short per-poll lock, recomputes, and when the content
  changed stores the snapshot under a new version and PUBLISHes it; every instance's
  listener thread hands it to its streams. Without Redis the same happens in process.
- Versions are max(previous + 1, clock in ms), the clock being Redis's TIME (one clock for
  every instance) or, without Redis, this process's. They keep increasing across a Redis
  restart (the cache is empty and the clock has moved on), so nothing needs to survive one.
- The database is the truth. A snapshot missing from the cache, one whose moment has passed
  (a scheduled close, an auto-played reveal step), or one older than a client has already
  seen is recomputed; and while streams are open each instance recomputes every
  LIVE_RECONCILE_SECONDS, which repairs a publish lost while Redis was away. When Redis is
  unreachable the instance logs it once and keeps its own streams updating in process.

What goes out depends on the subscriber: organizers get the organizer document, everyone
else (the public, an overlay key) the public one; polls.results_view decides what each holds.

Where each part lives:

- snapshot.py: Documents, Snapshot, poll_ident and the audiences (pure).
- hub.py: LiveHub, the in-process hub: streams, latest snapshots, coalescing, the worker.
- redis_fanout.py: SharedHub, the hub shared through Redis: cache, lock, PUBLISH, listener.
- sse.py: the SSE wire format and the loop behind each stream.

The settings (LIVE_*) are in voting.config.DEFAULTS.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app

from voting.extensions import redis_client
from voting.live.hub import LiveHub, Subscription
from voting.live.redis_fanout import SharedHub
from voting.live.snapshot import (
    AUDIENCES,
    ORGANIZER,
    OVERLAY,
    PUBLIC,
    Documents,
    Snapshot,
    Source,
    poll_ident,
)
from voting.live.sse import parse_event_id, sse_event, stream_events

__all__ = [
    "AUDIENCES",
    "ORGANIZER",
    "OVERLAY",
    "PUBLIC",
    "Documents",
    "LiveHub",
    "SharedHub",
    "Snapshot",
    "Source",
    "Subscription",
    "hub",
    "init_app",
    "notify",
    "parse_event_id",
    "poll_ident",
    "shutdown",
    "sse_event",
    "stream_events",
]

log = logging.getLogger(__name__)

_EXTENSION = "voting.live"


def init_app(app: Flask, source: Source) -> None:
    """Give the app its hub; `source` computes a poll's documents from the database."""
    with app.app_context():
        client = redis_client.get()
    found = LiveHub(app, source) if client is None else SharedHub(app, source, client)
    app.extensions[_EXTENSION] = found


def hub(app: Flask | None = None) -> LiveHub:
    """The current app's hub."""
    found: LiveHub = (app or current_app).extensions[_EXTENSION]
    return found


def notify(slug: str) -> None:
    """Call after committing a change to a poll; never raises."""
    try:
        found: LiveHub | None = current_app.extensions.get(_EXTENSION)
        if found is not None:
            found.notify(slug)
    except Exception:
        log.exception("live update for poll %r could not be queued", slug)


def shutdown(app: Flask) -> None:
    """Stop the app's live threads."""
    found: LiveHub | None = app.extensions.get(_EXTENSION)
    if found is not None:
        found.close()
