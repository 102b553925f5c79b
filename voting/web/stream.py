"""The live event stream: GET /api/polls/<slug>/events (Server-Sent Events)."""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from voting import live
from voting.domain.errors import InvalidToken, NotFound
from voting.extensions import db, limiter
from voting.services import overlay, polls
from voting.web.limits import address_key, setting

bp = Blueprint("stream", __name__, url_prefix="/api")


@bp.get("/polls/<slug>/events")
@limiter.limit(setting("RATELIMIT_STREAM_PER_IP"), key_func=address_key)
def events(slug: str) -> ResponseReturnValue:
    """`tally` events (the results JSON plus `version`, which is also the event id) and heartbeats.

    Who listens decides what is sent: an overlay key (checked, read-only) and the public get
    the public document; a logged-in organizer the organizer one, unless ?view=public asks
    for what the audience sees (a projected results page).
    """
    poll = polls.get_poll(slug)
    key = request.args.get("key")
    if key is not None:
        if not overlay.check_overlay_key(poll, key):
            raise InvalidToken("This overlay link is not valid (it may have been rotated).")
        audience = live.OVERLAY
    elif request.args.get("view") != "public" and current_user.is_authenticated:
        audience = live.ORGANIZER
    else:
        audience = live.PUBLIC
    seen = live.parse_event_id(
        request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    )
    ident, key_version, slug = live.poll_ident(poll), poll.overlay_key_version, poll.slug
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
