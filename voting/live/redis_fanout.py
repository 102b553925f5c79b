"""The hub shared through Redis: the snapshot cache, per-poll lock, PUBLISH, listener, health."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from flask import Flask

from voting import metrics
from voting.live.hub import LiveHub, Subscription
from voting.live.snapshot import Snapshot, Source

log = logging.getLogger(__name__)

_LOCK_SECONDS = 5.0


class SharedHub(LiveHub):
    """A LiveHub whose snapshots every instance shares through Redis.

    Recomputing takes a per-poll lock and stores a changed snapshot under a version from
    Redis's clock, then PUBLISHes it; the listener thread (only while streams are open)
    hands other instances' snapshots to ours. While Redis is unreachable the hub works as
    the in-process one does, recounting more often, and republishes when Redis returns.
    """

    # Publishes arrive at once: the recount only repairs lost ones (at most 2 s while Redis
    # is unreachable, see _reconcile_seconds).
    default_reconcile = 10.0

    def __init__(self, app: Flask, source: Source, client: redis.Redis) -> None:
        super().__init__(app, source)
        self.redis = client
        config = app.config
        self.prefix = str(config["LIVE_KEY_PREFIX"])
        self.cache_ttl = int(config["LIVE_CACHE_TTL_SECONDS"])
        self.channel = f"{self.prefix}:snapshots"
        self._republish: set[str] = set()
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._redis_down_since: float | None = None
        self._redis_retry_at = 0.0
        # Per poll: the cached value last read and its snapshot, so a value read again
        # unchanged is not parsed again (100 projects make about 200 KB of JSON).
        self._parsed: dict[str, tuple[str | bytes, Snapshot]] = {}

    def subscribe(self, slug: str, ident: str) -> Subscription:
        """Register a stream; wait (briefly) until this process hears publishes."""
        sub = super().subscribe(slug, ident)
        if self._redis_down_since is None:
            self._listening.wait(1.0)
        return sub

    @property
    def redis_reachable(self) -> bool:
        """False from a failed Redis call until one succeeds again."""
        return self._redis_down_since is None

    def refresh(self, slug: str) -> Snapshot | None:
        """Recompute from the database and publish if the content changed; the result."""
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

    # -- LiveHub's hooks --

    def _cached(self, slug: str, ident: str, seen: int | None) -> Snapshot | None:
        # Redis is away: memory misses other instances' changes, so ask the database.
        if not self._redis_usable():
            return None
        try:
            raw = self.redis.get(self._snap_key(ident))
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return None
        snap = self._decoded(slug, raw) if raw else None
        if snap is not None and self._usable(snap, ident, seen):
            self._accept(snap)
            return snap
        return None

    def _decoded(self, slug: str, raw: str | bytes) -> Snapshot:
        """The snapshot Redis holds as `raw`: parsed once, then reused while it is unchanged."""
        with self._cond:
            last = self._parsed.get(slug)
        if last is not None and last[0] == raw:
            return last[1]
        snap = Snapshot.from_json(raw)
        with self._cond:
            self._parsed[slug] = (raw, snap)
        return snap

    def _forget_unwatched(self, slug: str) -> bool:
        return False  # streams on other instances may be watching

    def _clock_ms(self) -> int:
        return 0  # Redis's clock orders versions (_refresh_shared); here, count on

    def _reconcile_seconds(self) -> float:
        # While Redis is away other instances' publishes cannot reach us: read the
        # database often instead, so open streams keep following every instance's ballots.
        return self.reconcile if self._redis_down_since is None else min(self.reconcile, 2.0)

    def _start_threads(self) -> None:
        super()._start_threads()
        if self._listener is None:
            self._listening.clear()
            self._listener = threading.Thread(
                target=self._listen, name="voting-live-listener", daemon=True
            )
            self._listener.start()

    def _threads(self) -> tuple[threading.Thread | None, ...]:
        return (*super()._threads(), self._listener)

    def _has_work(self) -> bool:
        return super()._has_work() or bool(self._republish)

    def _due(self) -> tuple[list[str], float]:
        due, wait = super()._due()
        if self._republish and self._redis_usable():
            due.extend(s for s in self._republish if s not in due)
            self._republish.clear()
        return due, wait

    # -- the shared cache --

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
                metrics.SNAPSHOTS_PUBLISHED.labels("redis").inc()
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
        self._accept(snap)
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

    # -- the listener --

    def _listen(self) -> None:
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
