"""Getting a token yourself: roster claims and QR cards' typed codes (/p/<slug>/claim), and
open polls' passes (/p/<slug>/join)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidToken
from voting.domain.statuses import Eligibility
from voting.extensions import limiter
from voting.services import issuing, polls, roster
from voting.web.limits import address_key, setting
from voting.web.voter_cookie import cookie_token, set_voter_cookie

bp = Blueprint("claim", __name__)


@bp.route("/p/<slug>/claim", methods=["GET", "POST"])
@limiter.limit(setting("RATELIMIT_LINK_PER_IP"), key_func=address_key, methods=["POST"])
def claim(slug: str) -> ResponseReturnValue:
    """An attendee enters their ticket code or email (roster polls), or the short code on
    their voting card (invite polls, when its QR code will not scan), and gets their token."""
    poll = polls.get_poll(slug)
    if poll.eligibility == Eligibility.OPEN:
        return redirect(url_for("claim.join", slug=slug), code=303)
    error = None
    if request.method == "POST":
        typed = request.form.get("code", "")
        try:
            if poll.eligibility == Eligibility.ROSTER:
                token = roster.claim(slug, typed)
            else:
                token = issuing.claim_card(slug, typed)
        except InvalidToken as exc:
            error = exc.message
        else:
            response = redirect(url_for("public.ballot", slug=slug), code=303)
            return set_voter_cookie(response, poll, token)
    return render_template("claim.html", poll=poll, error=error), 403 if error else 200


@bp.route("/p/<slug>/join", methods=["GET", "POST"])
@limiter.limit(setting("RATELIMIT_DEVICE_TOKENS_PER_IP"), key_func=address_key, methods=["POST"])
def join(slug: str) -> ResponseReturnValue:
    """Open polls: one voting pass per browser. A GET only shows the button."""
    poll = polls.get_poll(slug)
    if poll.eligibility != Eligibility.OPEN:
        return redirect(url_for("public.ballot", slug=slug), code=303)
    if cookie_token(poll) is not None:
        return redirect(url_for("public.ballot", slug=slug), code=303)
    if request.method == "GET":
        return render_template("join.html", poll=poll)
    token = issuing.issue_device_token(poll)
    return set_voter_cookie(redirect(url_for("public.ballot", slug=slug), code=303), poll, token)
