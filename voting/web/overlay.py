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
from voting.models import Poll
from voting.services import overlay, polls
from voting.web.presenting import shown_places
from voting.web.qrsheet import qr_svg

bp = Blueprint("overlay", __name__)

THEMES = ("dark", "light")
LAYOUTS = ("bars", "podium")
DEFAULT_TOP = 10
MAX_TOP = 20


@dataclass(frozen=True)
class VotePanel:
    """How a viewer of the stream gets to vote: a QR code where one leads somewhere useful."""

    headline: str
    detail: str
    short_url: str
    qr: str | None


def vote_panel(poll: Poll) -> VotePanel:
    """Open polls: a pass for anyone. Roster polls: the claim page. Invite polls: no QR code
    (the public ballot would only send the viewer back to their card), but where a card's
    printed code can be typed. Never a QR code that leads back to "scan the QR code"."""
    if poll.eligibility == Eligibility.OPEN:
        target, headline, detail = "claim.join", "Scan to vote", ""
    elif poll.eligibility == Eligibility.ROSTER:
        target, headline = "claim.claim", "Scan to claim your vote"
        detail = "with your ticket code or registration email"
    else:
        target, headline = "claim.claim", "Vote with your voting card"
        detail = "Scan its QR code, or type the code printed under it at"
    url = public_url(target, slug=poll.slug)
    parts = urlsplit(url)
    qr = None if poll.eligibility == Eligibility.INVITE else qr_svg(url)
    return VotePanel(headline, detail, parts.netloc + parts.path, qr)


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
    response = current_app.make_response(
        render_template(
            "overlay.html",
            poll=poll,
            doc=doc,
            shown=shown_places(doc),
            options=read_options(),
            vote=vote_panel(poll),
            # The winner card names the prize: the poll's award, else its title.
            award=poll.award or poll.title,
            stream_url=url_for("stream.events", slug=poll.slug, key=key),
            server_now=int(time.time() * 1000),
            heartbeat_ms=int(float(current_app.config["LIVE_HEARTBEAT_SECONDS"]) * 1000),
        )
    )
    return response
