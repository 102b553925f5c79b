"""The stream overlay: an OBS browser source, opened with a signed read-only key."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from voting.errors import InvalidToken
from voting.qrsheet import qr_svg
from voting.services import overlay, polls

bp = Blueprint("overlay", __name__)


@bp.get("/overlay/<slug>")
def show(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    if not overlay.check_overlay_key(poll, request.args.get("key")):
        raise InvalidToken("This overlay link is not valid (it may have been rotated).")
    doc = polls.results_view(poll)
    vote_url = request.host_url.rstrip("/") + f"/p/{poll.slug}"
    return render_template(
        "overlay.html", poll=poll, doc=doc, qr=qr_svg(vote_url), vote_url=vote_url
    )
