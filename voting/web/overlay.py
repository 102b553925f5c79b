"""The stream overlay: an OBS browser source, opened with a signed read-only key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidToken
from voting.domain.statuses import Eligibility
from voting.links import public_url
from voting.services import overlay, polls
from voting.web.presenting import shown_places
from voting.web.qrsheet import qr_svg

bp = Blueprint("overlay", __name__)

THEMES = ("dark", "light")
LAYOUTS = ("bars", "podium")
DEFAULT_TOP = 10
MAX_TOP = 20


@dataclass(frozen=True)
class OverlayOptions:
    theme: str
    layout: str
    top: int


def read_options() -> OverlayOptions:
    """theme=dark|light, layout=bars|podium, top=N; a typo falls back to the default, since
    a producer setting up OBS minutes before going live is better served by a picture."""
    theme = request.args.get("theme", THEMES[0])
    layout = request.args.get("layout", LAYOUTS[0])
    raw_top = request.args.get("top", "")
    top = int(raw_top) if raw_top.isdecimal() else DEFAULT_TOP
    return OverlayOptions(
        theme=theme if theme in THEMES else THEMES[0],
        layout=layout if layout in LAYOUTS else LAYOUTS[0],
        top=min(max(top, 1), MAX_TOP),
    )


@bp.get("/overlay/<slug>")
def show(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    key = request.args.get("key")
    if not overlay.check_overlay_key(poll, key):
        raise InvalidToken("This overlay link is not valid (it may have been rotated).")
    # The overlay is broadcast: it gets the public document, never the organizer's.
    doc = polls.results_view(poll)
    # Open polls: the QR leads straight to getting a voting pass (issue 8).
    endpoint = "claim.join" if poll.eligibility == Eligibility.OPEN else "public.ballot"
    vote_url = public_url(endpoint, slug=poll.slug)
    parts = urlsplit(vote_url)
    response = current_app.make_response(
        render_template(
            "overlay.html",
            poll=poll,
            doc=doc,
            shown=shown_places(doc),
            options=read_options(),
            qr=qr_svg(vote_url),
            vote_url=vote_url,
            short_url=parts.netloc + parts.path,
            stream_url=url_for("stream.events", slug=poll.slug, key=key),
            server_now=int(time.time() * 1000),
            heartbeat_ms=int(float(current_app.config["LIVE_HEARTBEAT_SECONDS"]) * 1000),
        )
    )
    return response
