"""The in-process hub: open streams, the latest snapshots, coalescing and the worker thread."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, has_request_context

from voting import metrics
from voting.extensions import db
from voting.live.snapshot import Documents, Snapshot, Source

log = logging.getLogger(__name__)

_IDLE_EXIT_SECONDS = 5.0


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
    """Per app and process: the latest snapshots, the open streams, and the worker thread.

    The worker recomputes dirty, due and reconcile-time polls. On its own the hub is the
    embedded default: every change passes through this process, versions come from its
    clock. SharedHub (voting.live.redis_fanout) shares snapshots through Redis: it overrides
    subscribe, refresh, redis_reachable and the hooks under "what SharedHub overrides".
    """

    # Seconds between recounts while streams are open, unless LIVE_RECONCILE_SECONDS is set:
    # without Redis another process (such as the CLI) cannot notify us.
    default_reconcile = 1.0

    def __init__(self, app: Flask, source: Source) -> None:
        self.app = app
        self.source = source
        config = app.config
        self.heartbeat = float(config["LIVE_HEARTBEAT_SECONDS"])
        self.min_interval = float(config["LIVE_MIN_INTERVAL"])
        self.stream_interval = float(config["LIVE_STREAM_MIN_INTERVAL"])
        self.retry_ms = int(config["LIVE_RETRY_MS"])
        self.stream_seconds = float(config["LIVE_STREAM_SECONDS"])
        reconcile = config["LIVE_RECONCILE_SECONDS"]
        self.reconcile = float(reconcile if reconcile else self.default_reconcile)

        self._cond = threading.Condition()
        self._latest: dict[str, Snapshot] = {}
        self._subs: dict[str, set[Subscription]] = {}
        self._dirty: dict[str, float] = {}
        # Polls whose dirty mark the worker has taken and is counting now: until it is done,
        # the snapshot in memory predates a committed change and must not start a stream.
        self._computing: set[str] = set()
        self._computed_at: dict[str, float] = {}
        self._changes: dict[str, int] = {}
        self._compute_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- what services and views call --

    def notify(self, slug: str) -> None:
        """A committed change to this poll: publish it (coalesced in requests, now otherwise)."""
        with self._cond:
            self._changes[slug] = self._changes.get(slug, 0) + 1
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
        """Register a stream."""
        sub = Subscription(slug, ident)
        with self._cond:
            self._subs.setdefault(slug, set()).add(sub)
            self._start_threads()
        metrics.STREAMS_OPEN.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._cond:
            subs = self._subs.get(sub.slug)
            if subs is not None and sub in subs:
                metrics.STREAMS_OPEN.dec()
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
        return True

    @property
    def closed(self) -> bool:
        """True once close() has run: open streams end."""
        return self._closed

    def latest(self, slug: str) -> Snapshot | None:
        with self._cond:
            return self._latest.get(slug)

    def changes(self, slug: str) -> int:
        """How many changes to this poll this process has been told of (notify), so far."""
        with self._cond:
            return self._changes.get(slug, 0)

    def watched(self, slug: str) -> Snapshot | None:
        """The snapshot of a poll that streams here watch: kept current while they do."""
        with self._cond:
            snap = self._latest.get(slug)
            return snap if snap is not None and self._subs.get(slug) else None

    def current(self, slug: str, ident: str, *, seen: int | None = None) -> Snapshot | None:
        """The current snapshot for a new stream: from the cache, else the database.

        The cache is Redis when it is configured and reachable, else this process's memory.
        A snapshot is not used when its moment has passed, when a change made here is still
        waiting to be counted, or when it is older than `seen`, a version the client already
        had (Last-Event-ID): the database is asked instead.
        """
        snap = self._cached(slug, ident, seen)
        if snap is not None:
            return snap
        return self.refresh(slug)

    def refresh(self, slug: str) -> Snapshot | None:
        """Recompute from the database and publish if the content changed; the result."""
        return self._refresh_local(slug)

    def refresh_quietly(self, slug: str) -> None:
        """refresh(), for the paths that must never fail because of live updates."""
        try:
            if self._forget_unwatched(slug):
                return
            self.refresh(slug)
        except Exception:
            log.exception("live update for poll %r failed; streams catch up on the next one", slug)

    def close(self) -> None:
        """Stop the threads (tests; a process that exits needs nothing)."""
        with self._cond:
            self._closed = True
            metrics.STREAMS_OPEN.dec(sum(len(subs) for subs in self._subs.values()))
            for subs in self._subs.values():
                for sub in subs:
                    sub.wake()
            self._subs.clear()
            self._dirty.clear()
            self._cond.notify_all()
        for thread in self._threads():
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)

    # -- what SharedHub overrides --

    def _cached(self, slug: str, ident: str, seen: int | None) -> Snapshot | None:
        """A usable snapshot without asking the database, or None."""
        snap = self._fresh_local(slug, ident)
        if snap is not None and self._usable(snap, ident, seen):
            return snap
        return None

    def _forget_unwatched(self, slug: str) -> bool:
        """True (and the poll forgotten) when no stream anywhere can be watching it."""
        if self.subscriber_count(slug):
            return False
        # Nobody here is watching, and no other process can be: just forget it.
        with self._cond:
            self._latest.pop(slug, None)
        return True

    def _clock_ms(self) -> int:
        """The least version a snapshot made in process gets: this process's clock, in ms."""
        return int(time.time() * 1000)

    def _reconcile_seconds(self) -> float:
        """How often open streams' polls are recounted from the database, now."""
        return self.reconcile

    def _start_threads(self) -> None:
        """Start what a new stream needs (caller holds self._cond)."""
        self._ensure_worker()

    def _threads(self) -> tuple[threading.Thread | None, ...]:
        """The threads close() waits for."""
        return (self._worker,)

    def _has_work(self) -> bool:
        """True while the worker must stay (caller holds self._cond)."""
        return bool(self._subs or self._dirty)

    # -- computing --

    def _compute(self, slug: str) -> Documents | None:
        with self.app.app_context():
            _in_worker.active = True
            try:
                return self.source(slug)
            finally:
                _in_worker.active = False
                db.session.remove()

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
            snap = Snapshot(
                version=max(self._clock_ms(), self._local_version(slug) + 1),
                digest=digest,
                docs=docs,
            )
        metrics.SNAPSHOTS_PUBLISHED.labels("process").inc()
        self._accept(snap)
        return snap

    def _local_version(self, slug: str) -> int:
        latest = self.latest(slug)
        return latest.version if latest is not None else 0

    def _usable(self, snap: Snapshot, ident: str, seen: int | None) -> bool:
        with self._cond:
            pending = snap.slug in self._dirty or snap.slug in self._computing
        fresh = snap.ident == ident and not snap.due() and not pending
        return fresh and (seen is None or seen <= snap.version)

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

    # -- the worker --

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
        reconcile = self._reconcile_seconds()
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
                    if self._has_work():
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
                    if self._dirty.pop(slug, None) is not None:
                        self._computing.add(slug)
                    self._computed_at[slug] = now
            for slug in due:
                try:
                    self.refresh_quietly(slug)
                finally:
                    with self._cond:
                        self._computing.discard(slug)
