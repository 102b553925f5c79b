"""The SSE wire format, and the loop that turns one stream's snapshots into events."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

from voting import metrics
from voting.live.hub import LiveHub, Subscription
from voting.live.snapshot import OVERLAY, Snapshot, doc_digest


def sse_event(
    event: str, data: Any, *, event_id: int | None = None, retry_ms: int | None = None
) -> str:
    """One Server-Sent Event: optional retry and id fields, the event name, JSON data."""
    lines = []
    if retry_ms is not None:
        lines.append(f"retry: {int(retry_ms)}")
    if event_id is not None:
        lines.append(f"id: {int(event_id)}")
    lines.append(f"event: {event}")
    # JSON never contains a raw newline, so the data fits one data: line.
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


def parse_event_id(value: str | None) -> int | None:
    """A Last-Event-ID header as a version, or None when it is absent or not ours."""
    if not value or not value.strip().isdecimal() or len(value.strip()) > 18:
        return None
    return int(value.strip())


def tally_event(snap: Snapshot, audience: str) -> tuple[str, bytes]:
    """This audience's document digest and `tally` event, encoded once per snapshot.

    Every stream of an audience sends the same bytes: with thousands of viewers, encoding
    the JSON per viewer would cost more than sending it.
    """
    found = snap.encoded.get(audience)
    if found is None:
        doc = snap.document(audience)
        found = (doc_digest(doc), sse_event("tally", doc, event_id=snap.version).encode())
        snap.encoded[audience] = found  # two streams racing here make equal values
    return found


def stream_events(
    hub: LiveHub,
    sub: Subscription,
    audience: str,
    first: Snapshot,
    *,
    key_version: int | None = None,
) -> Iterator[bytes]:
    """The SSE body: the current snapshot at once, then changes (coalesced) and heartbeats.

    Ends (and unsubscribes) after LIVE_STREAM_SECONDS, when the hub closes, when the poll
    was made again under its slug, or when an overlay's key was rotated.
    """
    # The labelled counter, looked up once per stream rather than once per event.
    tallies = metrics.EVENTS_DELIVERED.labels("tally")
    try:
        retry = hub.retry_ms + random.randint(0, 2000)  # spreads a reconnect storm
        sent_digest, event = tally_event(first, audience)
        tallies.inc()  # counted per stream it is written to
        yield b"retry: %d\n" % retry + event
        sent_version = first.version
        started = last_write = last_event = time.monotonic()
        while True:
            now = time.monotonic()
            remaining = started + hub.stream_seconds - now
            if remaining <= 0 or hub.closed:
                return
            sub.wait(min(hub.heartbeat - (now - last_write), remaining))
            snap = hub.latest(sub.slug)
            if snap is not None and snap.version > sent_version:
                pause = last_event + hub.stream_interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                    snap = hub.latest(sub.slug) or snap
                if snap.ident != sub.ident:
                    return  # the poll was made again under this slug: start over
                if audience == OVERLAY and snap.docs.overlay_key_version != key_version:
                    metrics.EVENTS_DELIVERED.labels("revoked").inc()
                    yield sse_event(
                        "revoked", {"message": "This overlay link was replaced."}
                    ).encode()
                    return
                sent_version = snap.version
                digest, event = tally_event(snap, audience)
                if digest != sent_digest:
                    tallies.inc()
                    yield event
                    sent_digest = digest
                    last_write = last_event = time.monotonic()
                    continue
            if time.monotonic() - last_write >= hub.heartbeat - 0.05:
                yield b'event: heartbeat\ndata: {"now":%d}\n\n' % int(time.time() * 1000)
                last_write = time.monotonic()
    finally:
        hub.unsubscribe(sub)
