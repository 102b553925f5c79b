"""Pages for attendees: home, voter link landing, ballot, confirm, receipt."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.errors import AlreadyVoted, InvalidToken, VotingError
from voting.extensions import db, limiter
from voting.models import Poll, Project
from voting.services import ballots, polls
from voting.services.issuing import voter_signer
from voting.tokens import VoterToken, read_voter_token
from voting.web.limits import address_key, setting

bp = Blueprint("public", __name__)

COOKIE_PREFIX = "vt_"


def _cookie_name(poll: Poll) -> str:
    return f"{COOKIE_PREFIX}{poll.id}"


def _cookie_token(poll: Poll) -> tuple[str | None, VoterToken | None]:
    raw = request.cookies.get(_cookie_name(poll))
    if not raw:
        return None, None
    try:
        token = read_voter_token(voter_signer(), raw)
    except InvalidToken:
        return None, None
    return (raw, token) if token.poll_id == poll.id else (None, None)


@bp.get("/")
def home() -> ResponseReturnValue:
    open_polls = polls.list_polls(["open"])
    others = [p for p in polls.list_polls(["closed", "revealing", "revealed"])]
    return render_template("home.html", open_polls=open_polls, other_polls=others)


@bp.get("/v/<path:token>")
@limiter.limit(setting("RATELIMIT_LINK_PER_IP"), key_func=address_key)
def voter_link(token: str) -> ResponseReturnValue:
    """Check the link, move the token into a cookie, and send the voter to a clean URL.

    A GET never spends anything: link previews and scanners may open it freely.
    """
    try:
        decoded = read_voter_token(voter_signer(), token)
    except InvalidToken:
        return render_template("notice.html", kind="invalid-link"), 403
    poll = db.session.get(Poll, decoded.poll_id)
    if poll is None:
        return render_template("notice.html", kind="invalid-link"), 403
    target = url_for("public.ballot", slug=poll.slug)
    response = redirect(target, code=303)
    response.set_cookie(
        _cookie_name(poll),
        token,
        max_age=60 * 60 * 24 * 30,
        path=target,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/p/<slug>")
def ballot(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    raw, token = _cookie_token(poll)
    receipt = ballots.receipt_for(token.token_id) if token else None
    choices = [c.project for c in poll.choices if not c.withdrawn]
    return render_template(
        "ballot.html",
        poll=poll,
        status=status,
        has_token=raw is not None,
        receipt=receipt,
        projects=choices,
        excluded=token.excluded if token else frozenset(),
    )


def _chosen(poll: Poll) -> list[Project]:
    wanted = request.form.getlist("choice")
    by_slug = {c.project.slug: c.project for c in poll.choices if not c.withdrawn}
    return [by_slug[s] for s in wanted if s in by_slug]


@bp.post("/p/<slug>/confirm")
def confirm(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    chosen = _chosen(poll)
    if not chosen:
        return redirect(url_for("public.ballot", slug=slug), code=303)
    return render_template("confirm.html", poll=poll, chosen=chosen)


@bp.post("/p/<slug>/cast")
def cast(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    raw, _token = _cookie_token(poll)
    if raw is None:
        return render_template("notice.html", kind="no-token", poll=poll), 403
    choices = request.form.getlist("choice")
    try:
        result = ballots.cast_ballot(slug, raw, choices)
    except AlreadyVoted as exc:
        return render_template("receipt.html", poll=poll, receipt=exc.receipt, already=True), 409
    except VotingError as exc:
        return render_template(
            "notice.html", kind=exc.code, message=exc.message, poll=poll
        ), exc.status
    return render_template("receipt.html", poll=poll, receipt=result.receipt, already=False)


@bp.get("/p/<slug>/results")
def results_page(slug: str) -> ResponseReturnValue:
    """The public results, within the results mode; live over the event stream with
    JavaScript, and refreshing by itself without it."""
    poll = polls.get_poll(slug)
    doc = polls.results_view(poll)
    return render_template(
        "results.html",
        poll=poll,
        doc=doc,
        shown=polls.shown_places(doc),
        refresh=polls.refresh_hint(poll, doc["status"]),
        # view=public: an organizer's browser gets what the room sees (it may be projected).
        stream_url=url_for("stream.events", slug=poll.slug, view="public"),
    )
