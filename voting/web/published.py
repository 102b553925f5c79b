"""Public results from the live snapshot cache, with ETags, so a crowd's refreshes cost little.

The results JSON and page are cut from the snapshot the event streams send (voting.live):
no recount per request. A process keeps the snapshot it last read for LIVE_MIN_INTERVAL
(the streams' own coalescing interval), unless this process has committed a change to the
poll since (LiveHub.changes) or the snapshot's moment has passed; after that it asks again (a light query for the poll's cache identity, then Redis, or the
database when the cache has nothing usable). The JSON body is serialised once per version.
Each answer carries an ETag naming the snapshot's version (and, for the page, its language
and this release's templates); a repeat with If-None-Match gets 304 with no body.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Response, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from voting import live
from voting.config import ROOT
from voting.domain.errors import NotFound
from voting.extensions import db
from voting.i18n import current_language
from voting.services import polls


@dataclass
class _Held:
    snap: live.Snapshot
    at: float
    changes: int  # hub.changes(slug) when it was read: a change made here since voids it
    bodies: dict[str, bytes]


_held: dict[tuple[int, str], _Held] = {}
_lock = threading.Lock()


def _fresh(slug: str) -> _Held | None:
    hub = live.hub()
    with _lock:
        held = _held.get((id(hub), slug))
    interval = float(current_app.config["LIVE_MIN_INTERVAL"])
    if held is None or time.monotonic() - held.at >= interval or held.snap.due():
        return None
    return None if hub.changes(slug) != held.changes else held


def snapshot(slug: str) -> live.Snapshot:
    """The poll's current snapshot: held briefly by this process, else from the cache."""
    held = _fresh(slug)
    if held is not None:
        return held.snap
    ident = polls.cache_ident(slug)
    # As the stream does: give the connection back first; a snapshot missing from the cache
    # is computed in an app context of its own, which takes a connection of its own.
    db.session.remove()
    hub = live.hub()
    changes = hub.changes(slug)  # before reading: a change made meanwhile voids what we read
    found = hub.current(slug, ident)
    if found is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    with _lock:
        before = _held.get((id(hub), slug))
        # The same version keeps what was serialised for it.
        kept = before.bodies if before is not None and before.snap.version == found.version else {}
        _held[(id(hub), slug)] = _Held(found, time.monotonic(), changes, kept)
    return found


def document(snap: live.Snapshot, audience: str) -> Response:
    """One audience's results JSON, serialised (and gzipped) once per snapshot version."""

    def serialise() -> bytes:
        doc = snap.docs.organizer if audience == live.ORGANIZER else snap.docs.public
        return bytes(current_app.json.dumps(doc, separators=(",", ":")).encode())

    return _answer(snap, audience, serialise, "application/json")


def page(snap: live.Snapshot, etag: str, render: Callable[[], str]) -> Response:
    """The results page, rendered (and gzipped) once per ETag (version, language, release,
    screen).

    Nothing else a client sends names a variant, so no query string can grow the cache."""
    return _answer(snap, f"page:{etag}", lambda: render().encode(), "text/html")


# Below this a body goes as it is: gzip's header and checksum would outweigh the saving.
_GZIP_MIN_BYTES = 512


def _answer(
    snap: live.Snapshot, variant: str, make: Callable[[], bytes], mimetype: str
) -> Response:
    """The variant's body, made once per snapshot version and process, and gzipped once
    too for the clients that accept it (every browser; deploy/nginx.conf passes it on).

    100 projects make about 11 KB of JSON, and about 2 KB gzipped."""
    packed_variant = f"{variant}:gzip"
    key = (id(live.hub()), snap.slug)
    with _lock:
        held = _held.get(key)
        bodies = held.bodies if held is not None and held.snap.version == snap.version else {}
        plain, packed = bodies.get(variant), bodies.get(packed_variant)
    made: dict[str, bytes] = {}
    if plain is None:
        plain = made[variant] = make()
    compress = "gzip" in request.accept_encodings and len(plain) >= _GZIP_MIN_BYTES
    if compress and packed is None:
        packed = made[packed_variant] = gzip.compress(plain, compresslevel=6)
    if made:
        with _lock:
            if held is not None and held.snap.version == snap.version:
                held.bodies.update(made)
    response = Response(packed if compress else plain, mimetype=mimetype)
    response.vary.add("Accept-Encoding")
    if compress:
        response.headers["Content-Encoding"] = "gzip"
    return response


def document_etag(snap: live.Snapshot, audience: str) -> str:
    """The results JSON's ETag: one version of one audience's document."""
    return f"{snap.version}-{audience}"


def page_etag(snap: live.Snapshot, screen: str = "page") -> str:
    """The results page's ETag: the version, the language, the screen and this release's files."""
    return f"{snap.version}-{current_language()}-{screen}-{_release(current_app.root_path)}"


def unchanged(etag: str) -> bool:
    """Does the client already hold this version (If-None-Match)?

    By weak comparison, as RFC 9110 has If-None-Match compare: a browser sends back the
    weak ETag it was given, W/"...", and plain `in` would only find a strong one."""
    return request.if_none_match.contains_weak(etag)


def not_modified(etag: str) -> BaseResponse:
    """A 304 for a repeat: headers only."""
    return conditional(Response(status=304), etag, shared=False)


# How long a shared cache in front (deploy/nginx.conf's micro-cache) may keep a public
# answer. Browsers still ask again each time (no-cache) and get a 304 while it holds; nginx
# reads X-Accel-Expires before Cache-Control and never passes it on to the client.
SHARED_SECONDS = 1


def conditional(response: BaseResponse, etag: str, *, shared: bool) -> BaseResponse:
    """The ETag, and that a cache must ask again before reuse (results change live).

    `shared`: the answer is the public one, which the micro-cache in front may keep for
    SHARED_SECONDS; an organizer's answer never says so (and is marked private, no-store)."""
    if shared:
        # Before Cache-Control: nginx before 1.23 (Debian 12 has 1.22) lets X-Accel-Expires
        # win only when it comes first (tests/test_nginx.py sees the HIT).
        response.headers["X-Accel-Expires"] = str(SHARED_SECONDS)
    response.set_etag(etag, weak=True)
    response.headers["Cache-Control"] = "no-cache"
    response.vary.add("Cookie")  # an organizer's session gets the organizer document
    # No make_conditional: unchanged() has answered If-None-Match already, and these
    # answers take no ranges and have no Last-Modified.
    return response


@functools.lru_cache(maxsize=4)
def _release(_app_root: str) -> str:
    """A digest of the templates, catalogs and static files this process renders with."""
    digest = hashlib.sha256()
    for folder in ("templates", "translations", "static"):
        for path in sorted(Path(ROOT, folder).rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(ROOT)}:{stat.st_size}:{stat.st_mtime_ns};".encode()
                )
    return digest.hexdigest()[:10]
