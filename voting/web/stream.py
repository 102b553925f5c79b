"""The live event stream: GET /api/polls/<slug>/events (Server-Sent Events)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from voting import live
from voting.domain.errors import InvalidToken, NotFound
from voting.extensions import db, limiter
from voting.services import overlay, polls
from voting.web.limits import address_key
from voting.web.sessions import organizer_signed_in

bp = Blueprint("stream", __name__, url_prefix="/api")


@dataclass(frozen=True)
class _Known:
    """A poll as this instance's live snapshot knows it: enough to open a stream."""

    id: int
    slug: str
    ident: str
    overlay_key_version: int


def _known(slug: str) -> _Known:
    """The poll from the snapshot that streams here already watch, else the database.

    A crowd opening streams on a poll that is already watched costs no query: the
    snapshot, kept current by the hub while streams watch, has the poll's identity and
    overlay key version.
    """
    snap = live.hub().watched(slug)
    if snap is not None and snap.docs.poll_id:
        docs = snap.docs
        return _Known(docs.poll_id, docs.slug, docs.ident, docs.overlay_key_version)
    poll = polls.get_poll(slug)
    return _Known(poll.id, poll.slug, live.poll_ident(poll), poll.overlay_key_version)


# Exempt from RATELIMIT_DEFAULT, and from the per-address limit unless it is set: viewers
# behind one NAT are never refused by default, and opening a stream costs no Redis call.
@bp.get("/polls/<slug>/events")
@limiter.exempt
def events(slug: str) -> ResponseReturnValue:
    """`tally` events (the results JSON plus `version`, which is also the event id) and heartbeats.

    Who listens decides what is sent: an overlay key (checked, read-only) and the public get
    the public document; a logged-in organizer the organizer one, unless ?view=public asks
    for what the audience sees (a projected results page).
    """
    per_address = current_app.config["RATELIMIT_STREAM_PER_IP"]
    if per_address:
        with limiter.limit(per_address, key_func=address_key):
            pass
    poll = _known(slug)
    key = request.args.get("key")
    if key is not None:
        if not overlay.check_overlay_key(poll, key):
            raise InvalidToken("This overlay link is not valid (it may have been rotated).")
        audience = live.OVERLAY
    elif request.args.get("view") != "public" and organizer_signed_in():
        audience = live.ORGANIZER
    else:
        audience = live.PUBLIC
    seen = live.parse_event_id(
        request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    )
    ident, key_version, slug = poll.ident, poll.overlay_key_version, poll.slug
    # Give the request's connection back now. The stream may last minutes, and a snapshot
    # missing from the cache is computed in its own app context, with a connection of its
    # own: holding ours meanwhile would need two per opening stream, and a crowd opening
    # streams could take the whole pool (DATABASE_POOL_SIZE) and wait on itself.
    db.session.remove()
    hub = live.hub()
    # Subscribe first, so a change made while we fetch the current snapshot still wakes us.
    sub = hub.subscribe(slug, ident)
    try:
        first = hub.current(slug, ident, seen=seen)
        if first is None:
            raise NotFound(f"There is no poll called {slug!r}.")
    except BaseException:
        hub.unsubscribe(sub)
        raise
    # Headers (no caching, no proxy buffering): voting.web.security's STREAM policy.
    return Response(
        live.stream_events(hub, sub, audience, first, key_version=key_version),
        mimetype="text/event-stream",
    )
