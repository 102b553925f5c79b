"""Public results from the live snapshot cache, with ETags, so a crowd's refreshes cost little.

The results JSON and page are cut from the snapshot the event streams send (voting.live):
no recount per request, only a light query for the poll's cache identity and a cache read
(Redis, or the database when the cache has nothing usable). Each answer carries an ETag
naming the snapshot's version (and, for the page, its language and this release's
templates); a repeat with If-None-Match gets 304 with no body.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Response, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from voting import live
from voting.config import ROOT
from voting.domain.errors import NotFound
from voting.extensions import db
from voting.i18n import current_language
from voting.services import polls


def snapshot(slug: str) -> live.Snapshot:
    """The poll's current snapshot: from the cache when usable, else counted now."""
    ident = polls.cache_ident(slug)
    # As the stream does: give the connection back first; a snapshot missing from the cache
    # is computed in an app context of its own, which takes a connection of its own.
    db.session.remove()
    found = live.hub().current(slug, ident)
    if found is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    return found


def document_etag(snap: live.Snapshot, audience: str) -> str:
    """The results JSON's ETag: one version of one audience's document."""
    return f"{snap.version}-{audience}"


def page_etag(snap: live.Snapshot) -> str:
    """The results page's ETag: the version, the page's language and this release's files."""
    return f"{snap.version}-{current_language()}-{_release(current_app.root_path)}"


def unchanged(etag: str) -> bool:
    """Does the client already hold this version (If-None-Match)?"""
    return etag in request.if_none_match


def not_modified(etag: str) -> BaseResponse:
    """A 304 for a repeat: headers only."""
    return conditional(Response(status=304), etag)


def conditional(response: BaseResponse, etag: str) -> BaseResponse:
    """The ETag, and that a cache must ask again before reuse (results change live)."""
    response.set_etag(etag, weak=True)
    response.cache_control.no_cache = True
    response.vary.add("Cookie")  # an organizer's session gets the organizer document
    return response.make_conditional(request)


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
