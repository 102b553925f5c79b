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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import redis
from flask import Flask, current_app, has_request_context

from voting.extensions import db, redis_client

log = logging.getLogger(__name__)

PUBLIC = "public"
ORGANIZER = "organizer"
OVERLAY = "overlay"
AUDIENCES = (PUBLIC, ORGANIZER, OVERLAY)

_IDLE_EXIT_SECONDS = 5.0
_LOCK_SECONDS = 5.0


def poll_ident(poll: Any) -> str:
    """A poll's identity in the cache: its slug and its random seed's hash.

    A poll made again under the same slug (a restored database, a test) never reads the
    cache of the one before it.
    """
    return f"{poll.slug}.{poll.tie_seed_hash[:16]}"


@dataclass(frozen=True)
class Documents:
    """What the database says now: both audiences' results documents for one poll."""

    ident: str
    slug: str
    public: dict[str, Any]
    organizer: dict[str, Any]
    overlay_key_version: int
    # When the clock alone will change the documents (epoch seconds), if ever.
    next_change_at: float | None

    def digest(self) -> str:
        body = {k: v for k, v in asdict(self).items()}
        return hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """Documents under a version: what the cache holds and the streams send."""

    version: int
    digest: str
    docs: Documents

    @property
    def slug(self) -> str:
        return self.docs.slug

    @property
    def ident(self) -> str:
        return self.docs.ident

    def document(self, audience: str) -> dict[str, Any]:
        """The results JSON for this audience, plus the version."""
        doc = self.docs.organizer if audience == ORGANIZER else self.docs.public
        return {**doc, "version": self.version}

    def due(self, now: float | None = None) -> bool:
        """True when the clock has passed the moment these documents change by themselves."""
        at = self.docs.next_change_at
        return at is not None and (now or time.time()) >= at

    def to_json(self) -> str:
        return json.dumps(
            {"version": self.version, "digest": self.digest, "docs": asdict(self.docs)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        data = json.loads(raw)
        return cls(
            version=int(data["version"]), digest=data["digest"], docs=Documents(**data["docs"])
        )


class Source(Protocol):
    def __call__(self, slug: str) -> Documents | None: ...


# -- SSE formatting -----------------------------------------------------------------------


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
    if not value or not value.strip().isdigit() or len(value.strip()) > 18:
        return None
    return int(value.strip())


# -- the hub --------------------------------------------------------------------------------


class Subscription:
    """One open stream's place in the hub: woken when its poll's snapshot changes."""

    def __init__(self, slug: str, ident: str) -> None:
        self.slug = slug
        self.ident = ident
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(max(0.0, timeout))
        self._event.clear()
        return woke


_in_worker = threading.local()


class LiveHub:
    """Per app and process: the latest snapshots, the open streams, and two threads.

    The worker recomputes dirty, due and reconcile-time polls; the listener (with Redis, only
    while streams are open) receives other instances' snapshots.
    """

    def __init__(self, app: Flask, source: Source, client: redis.Redis | None) -> None:
        self.app = app
        self.source = source
        self.redis = client
        config = app.config
        self.heartbeat = float(config["LIVE_HEARTBEAT_SECONDS"])
        self.min_interval = float(config["LIVE_MIN_INTERVAL"])
        self.retry_ms = int(config["LIVE_RETRY_MS"])
        self.stream_seconds = float(config["LIVE_STREAM_SECONDS"])
        self.prefix = str(config["LIVE_KEY_PREFIX"])
        self.cache_ttl = int(config["LIVE_CACHE_TTL_SECONDS"])
        reconcile = config.get("LIVE_RECONCILE_SECONDS")
        self.reconcile = float(reconcile if reconcile else (10.0 if self.redis else 1.0))
        self.channel = f"{self.prefix}:snapshots"

        self._cond = threading.Condition()
        self._latest: dict[str, Snapshot] = {}
        self._subs: dict[str, set[Subscription]] = {}
        self._dirty: dict[str, float] = {}
        self._computed_at: dict[str, float] = {}
        self._republish: set[str] = set()
        self._compute_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._redis_down_since: float | None = None
        self._redis_retry_at = 0.0
        self._closed = False

    # -- what services and views call --

    def notify(self, slug: str) -> None:
        """A committed change to this poll: publish it (coalesced in requests, now otherwise)."""
        if has_request_context() or getattr(_in_worker, "active", False):
            self.mark_dirty(slug)
        else:
            self.refresh_quietly(slug)

    def mark_dirty(self, slug: str) -> None:
        """Recompute this poll soon, within the coalescing interval."""
        with self._cond:
            self._dirty.setdefault(slug, time.monotonic())
            self._ensure_worker()
            self._cond.notify_all()

    def subscribe(self, slug: str, ident: str) -> Subscription:
        """Register a stream; with Redis, wait (briefly) until this process hears publishes."""
        sub = Subscription(slug, ident)
        with self._cond:
            self._subs.setdefault(slug, set()).add(sub)
            self._ensure_worker()
            if self.redis is not None and self._listener is None:
                self._listening.clear()
                self._listener = threading.Thread(
                    target=self._listen, name="voting-live-listener", daemon=True
                )
                self._listener.start()
        if self.redis is not None and self._redis_down_since is None:
            self._listening.wait(1.0)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._cond:
            subs = self._subs.get(sub.slug)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.slug]
            self._cond.notify_all()

    def subscriber_count(self, slug: str | None = None) -> int:
        with self._cond:
            if slug is not None:
                return len(self._subs.get(slug, ()))
            return sum(len(s) for s in self._subs.values())

    @property
    def redis_reachable(self) -> bool:
        """False from a failed Redis call until one succeeds again (True without Redis)."""
        return self._redis_down_since is None

    def latest(self, slug: str) -> Snapshot | None:
        with self._cond:
            return self._latest.get(slug)

    def current(self, slug: str, ident: str, *, seen: int | None = None) -> Snapshot | None:
        """The current snapshot for a new stream: from the cache, else the database.

        The cache is Redis when it is configured and reachable, else this process's memory.
        A snapshot is not used when its moment has passed, when a change made here is still
        waiting to be counted, or when it is older than `seen`, a version the client already
        had (Last-Event-ID): the database is asked instead.
        """
        if self.redis is not None and self._redis_usable():
            try:
                raw = self.redis.get(self._snap_key(ident))
            except redis.RedisError as exc:
                self._redis_failed(exc)
                snap = None
            else:
                snap = Snapshot.from_json(raw) if raw else None
                if snap is not None and self._usable(snap, ident, seen):
                    self._accept(snap)
                    return snap
        elif self.redis is None:
            snap = self._fresh_local(slug, ident)
            if snap is not None and self._usable(snap, ident, seen):
                return snap
        # Redis is away: memory misses other instances' changes, so ask the database.
        return self.refresh(slug)

    def _usable(self, snap: Snapshot, ident: str, seen: int | None) -> bool:
        with self._cond:
            pending = snap.slug in self._dirty
        fresh = snap.ident == ident and not snap.due() and not pending
        return fresh and (seen is None or seen <= snap.version)

    def refresh(self, slug: str) -> Snapshot | None:
        """Recompute from the database and publish if the content changed; the result."""
        if self.redis is not None:
            if self._redis_usable():
                try:
                    snap = self._refresh_shared(self.redis, slug)
                except redis.RedisError as exc:
                    self._redis_failed(exc)
                else:
                    self._redis_ok()
                    return snap
            # The shared cache missed this change: publish it when Redis is back.
            with self._cond:
                self._republish.add(slug)
        return self._refresh_local(slug)

    def refresh_quietly(self, slug: str) -> None:
        """refresh(), for the paths that must never fail because of live updates."""
        try:
            if self.redis is None and not self.subscriber_count(slug):
                # Nobody here is watching, and no other process can be: just forget it.
                with self._cond:
                    self._latest.pop(slug, None)
                return
            self.refresh(slug)
        except Exception:
            log.exception("live update for poll %r failed; streams catch up on the next one", slug)

    def events(
        self, sub: Subscription, audience: str, first: Snapshot, *, key_version: int | None = None
    ) -> Iterator[str]:
        """The SSE body: the current snapshot at once, then changes (coalesced) and heartbeats."""
        try:
            retry = self.retry_ms + random.randint(0, 2000)  # spreads a reconnect storm
            doc = first.document(audience)
            yield sse_event("tally", doc, event_id=first.version, retry_ms=retry)
            sent_version, sent_digest = first.version, _doc_digest(doc)
            started = last_write = last_event = time.monotonic()
            while True:
                now = time.monotonic()
                remaining = started + self.stream_seconds - now
                if remaining <= 0 or self._closed:
                    return
                sub.wait(min(self.heartbeat - (now - last_write), remaining))
                snap = self.latest(sub.slug)
                if snap is not None and snap.version > sent_version:
                    pause = last_event + self.min_interval - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                        snap = self.latest(sub.slug) or snap
                    if snap.ident != sub.ident:
                        return  # the poll was made again under this slug: start over
                    if audience == OVERLAY and snap.docs.overlay_key_version != key_version:
                        yield sse_event("revoked", {"message": "This overlay link was replaced."})
                        return
                    doc = snap.document(audience)
                    sent_version = snap.version
                    digest = _doc_digest(doc)
                    if digest != sent_digest:
                        yield sse_event("tally", doc, event_id=snap.version)
                        sent_digest = digest
                        last_write = last_event = time.monotonic()
                        continue
                if time.monotonic() - last_write >= self.heartbeat - 0.05:
                    yield sse_event("heartbeat", {"now": int(time.time() * 1000)})
                    last_write = time.monotonic()
        finally:
            self.unsubscribe(sub)

    def close(self) -> None:
        """Stop the threads (tests; a process that exits needs nothing)."""
        with self._cond:
            self._closed = True
            for subs in self._subs.values():
                for sub in subs:
                    sub.wake()
            self._subs.clear()
            self._dirty.clear()
            self._cond.notify_all()
        for thread in (self._worker, self._listener):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)

    # -- computing and publishing --

    def _compute(self, slug: str) -> Documents | None:
        with self.app.app_context():
            _in_worker.active = True
            try:
                return self.source(slug)
            finally:
                _in_worker.active = False
                db.session.remove()

    def _refresh_shared(self, client: redis.Redis, slug: str) -> Snapshot | None:
        lock = client.lock(
            f"{self.prefix}:lock:{slug}", timeout=_LOCK_SECONDS, blocking_timeout=_LOCK_SECONDS
        )
        if not lock.acquire():
            # Someone holds it for longer than a computation takes: try again shortly.
            self.mark_dirty(slug)
            return self.latest(slug)
        try:
            # Read the database only now: a computation that finishes after ours started
            # later and saw at least what we saw, so versions follow the database.
            docs = self._compute(slug)
            if docs is None:
                return None
            digest = docs.digest()
            raw = client.get(self._snap_key(docs.ident))
            cached = Snapshot.from_json(raw) if raw else None
            if cached is not None and cached.digest == digest:
                snap = cached
            else:
                seconds, micros = client.time()
                floor = max(
                    cached.version if cached else 0,
                    self._local_version(slug),
                )
                snap = Snapshot(
                    version=max(seconds * 1000 + micros // 1000, floor + 1),
                    digest=digest,
                    docs=docs,
                )
                payload = snap.to_json()
                pipe = client.pipeline(transaction=False)
                pipe.set(self._snap_key(docs.ident), payload, ex=self.cache_ttl)
                pipe.publish(self.channel, payload)
                pipe.execute()
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
        self._accept(snap)
        return snap

    def _refresh_local(self, slug: str) -> Snapshot | None:
        with self._compute_lock:
            docs = self._compute(slug)
            if docs is None:
                return None
            digest = docs.digest()
            latest = self.latest(slug)
            if latest is not None and latest.digest == digest:
                return latest
            # Without Redis our own clock orders versions; while Redis is away, count on from
            # the last one (Redis's clock takes over again when it returns).
            clock = int(time.time() * 1000) if self.redis is None else 0
            snap = Snapshot(
                version=max(clock, self._local_version(slug) + 1), digest=digest, docs=docs
            )
        self._accept(snap)
        return snap

    def _local_version(self, slug: str) -> int:
        latest = self.latest(slug)
        return latest.version if latest is not None else 0

    def _accept(self, snap: Snapshot, *, remote: bool = False) -> None:
        with self._cond:
            subs = self._subs.get(snap.slug, set())
            if remote and not any(s.ident == snap.ident for s in subs):
                return  # not a poll our streams are watching (or an older one of that slug)
            current = self._latest.get(snap.slug)
            if (
                current is None
                or snap.version > current.version
                or (snap.ident != current.ident and not remote)
            ):
                self._latest[snap.slug] = snap
                for sub in subs:
                    sub.wake()

    def _fresh_local(self, slug: str, ident: str) -> Snapshot | None:
        """Our in-memory snapshot, when it can stand in for the cache.

        Memory is kept current only while streams here watch the poll: the worker
        reconciles it with the database, and without Redis every change passes through
        this process (or is found by that reconcile).
        """
        with self._cond:
            snap = self._latest.get(slug)
            watched = bool(self._subs.get(slug))
        if snap is None or snap.ident != ident or not watched:
            return None
        return snap

    def _snap_key(self, ident: str) -> str:
        return f"{self.prefix}:snapshot:{ident}"

    # -- Redis health --

    def _redis_usable(self) -> bool:
        return self._redis_down_since is None or time.monotonic() >= self._redis_retry_at

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._cond:
            first = self._redis_down_since is None
            if first:
                self._redis_down_since = now
            backoff = min(8.0, max(1.0, (now - (self._redis_down_since or now)) / 2))
            self._redis_retry_at = now + backoff
        if first:
            log.warning(
                "Live updates: Redis is unreachable (%s). Ballots are unaffected; streams on "
                "this instance keep updating in process, other instances catch up when it returns.",
                exc,
            )

    def _redis_ok(self) -> None:
        with self._cond:
            if self._redis_down_since is None:
                return
            self._redis_down_since = None
            pending, self._republish = self._republish, set()
            for slug in pending | set(self._subs):
                self._dirty.setdefault(slug, time.monotonic())
            self._ensure_worker()
            self._cond.notify_all()
        log.warning("Live updates: Redis is reachable again; snapshots are shared again.")

    # -- threads --

    def _ensure_worker(self) -> None:
        """Start the worker if it is not running (caller holds self._cond)."""
        if self._closed:
            return
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._work, name="voting-live-worker", daemon=True
            )
            self._worker.start()

    def _due(self) -> tuple[list[str], float]:
        """Polls to recompute now, and how long to sleep otherwise (caller holds self._cond)."""
        now, wall = time.monotonic(), time.time()
        due: list[str] = []
        wait = 1.0
        # While Redis is away other instances' publishes cannot reach us: read the
        # database often instead, so open streams keep following every instance's ballots.
        reconcile = self.reconcile if self._redis_down_since is None else min(self.reconcile, 2.0)
        for slug, since in list(self._dirty.items()):
            ready_at = max(since, self._computed_at.get(slug, 0.0) + self.min_interval)
            if now >= ready_at:
                due.append(slug)
            else:
                wait = min(wait, ready_at - now)
        for slug in self._subs:
            if slug in due:
                continue
            snap = self._latest.get(slug)
            reconcile_at = self._computed_at.get(slug, 0.0) + reconcile
            if snap is None or snap.due(wall) or now >= reconcile_at:
                due.append(slug)
                continue
            wait = min(wait, reconcile_at - now)
            if snap.docs.next_change_at is not None:
                # A little after the moment, so the database's clock has surely passed it too.
                wait = min(wait, snap.docs.next_change_at - wall + 0.05)
        if self._republish and self._redis_usable():
            due.extend(s for s in self._republish if s not in due)
            self._republish.clear()
        return due, max(0.01, wait)

    def _work(self) -> None:
        idle_since: float | None = None
        while True:
            with self._cond:
                if self._closed:
                    self._worker = None
                    return
                due, wait = self._due()
                if not due:
                    if self._subs or self._dirty or self._republish:
                        idle_since = None
                    else:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > _IDLE_EXIT_SECONDS:
                            self._worker = None
                            return
                    self._cond.wait(wait)
                    continue
                idle_since = None
                now = time.monotonic()
                for slug in due:
                    self._dirty.pop(slug, None)
                    self._computed_at[slug] = now
            for slug in due:
                self.refresh_quietly(slug)

    def _listen(self) -> None:
        assert self.redis is not None
        pubsub = None
        backoff = 0.5
        failed = False
        try:
            while True:
                with self._cond:
                    if self._closed or not self._subs:
                        # Unheard publishes would make memory stale from here on.
                        self._listener = None
                        self._listening.clear()
                        self._latest.clear()
                        return
                try:
                    if pubsub is None:
                        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                        pubsub.subscribe(self.channel)
                        self._listening.set()
                        if failed:
                            # Publishes were missed while away: ask the database.
                            self._redis_ok()
                            with self._cond:
                                for slug in self._subs:
                                    self._dirty.setdefault(slug, time.monotonic())
                                self._cond.notify_all()
                        failed, backoff = False, 0.5
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        try:
                            self._accept(Snapshot.from_json(message["data"]), remote=True)
                        except (ValueError, KeyError, TypeError):
                            log.warning("Live updates: ignored a malformed snapshot message")
                except redis.RedisError as exc:
                    self._listening.clear()
                    self._redis_failed(exc)
                    failed = True
                    if pubsub is not None:
                        with contextlib.suppress(redis.RedisError):
                            pubsub.close()
                        pubsub = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            if pubsub is not None:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()


def _doc_digest(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# -- wiring ---------------------------------------------------------------------------------

_EXTENSION = "voting.live"


def init_app(app: Flask, source: Source) -> None:
    """Give the app its hub; `source` computes a poll's documents from the database."""
    with app.app_context():
        client = redis_client.get()
    app.extensions[_EXTENSION] = LiveHub(app, source, client)


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
