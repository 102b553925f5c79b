"""The other attendee pages: home, the voter link's landing, a project's detail, the results."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting import live
from voting.domain.errors import NotFound
from voting.domain.statuses import FINAL, PollStatus
from voting.extensions import limiter
from voting.models import Poll
from voting.services import polls, receipts, voters
from voting.web import published
from voting.web.limits import address_key, setting
from voting.web.presenting import refresh_hint, shown_places
from voting.web.public.blueprint import bp
from voting.web.public.gallery import active_projects, video_embed
from voting.web.public.visitor import CAN_VOTE, page_state, poll_path, visitor_for
from voting.web.voter_cookie import set_voter_cookie


@bp.get("/")
def home() -> ResponseReturnValue:
    by_status: dict[PollStatus, list[Poll]] = {}
    for poll in polls.list_polls():
        if poll.rehearsal_of is not None:
            continue  # a rehearsal is reached by its own links, never from the start page
        by_status.setdefault(polls.effective_status(poll), []).append(poll)
    return render_template(
        "home.html",
        open_polls=by_status.get(PollStatus.OPEN, []),
        upcoming=[p for p in by_status.get(PollStatus.DRAFT, []) if p.opens_at is not None],
        other_polls=[p for s in FINAL for p in by_status.get(s, [])],
    )


@bp.get("/v/<path:token>")
@limiter.limit(setting("RATELIMIT_LINK_PER_IP"), key_func=address_key)
def voter_link(token: str) -> ResponseReturnValue:
    """Check the link, move the token into a cookie, and send the voter to a clean URL.

    A GET never spends anything: link previews and scanners may open it freely.
    """
    try:
        voter = voters.check_token(token)
    except voters.UnusableLink as exc:
        # No caching and no referrer (the link is in the address): TOKEN_PAGE in web.security.
        return render_template("notice.html", kind="invalid-link", reason=exc.reason), 403
    return set_voter_cookie(redirect(poll_path(voter.poll), code=303), voter.poll, token)


@bp.get("/p/<slug>/project/<project>")
def project_detail(slug: str, project: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    found = next((p for p in active_projects(poll) if p.slug == project), None)
    if found is None:
        raise NotFound(f"There is no project {project!r} in this poll.")
    status = polls.effective_status(poll)
    visitor = visitor_for(poll)
    state = page_state(poll, status, visitor)
    excluded = found.id in visitor.excluded
    return render_template(
        "project.html",
        poll=poll,
        project=found,
        state=state,
        excluded=excluded,
        can_choose=state in CAN_VOTE and not excluded,
        embed=video_embed(found.demo_url),
        demo_host=_host(found.demo_url),
        repo_host=_host(found.repo_url),
        back=_back_link(poll),
    )


def _host(url: str | None) -> str:
    """The site a link leads to, as a person reads it: "youtube.com"."""
    host = urlsplit(url or "").hostname or ""
    return host.removeprefix("www.").removeprefix("m.")


def _back_link(poll: Poll) -> str:
    """Back to the gallery, keeping its filters when we came from it."""
    base = poll_path(poll)
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.path == base:
        kept: dict[str, Any] = {
            k: v for k, v in parse_qs(parts.query).items() if k in ("q", "category", "theme")
        }
        return url_for("public.ballot", slug=poll.slug, **kept)
    return base


# A hall opens this page from one conference NAT: no per-address limit (issue 11).
@bp.get("/p/<slug>/results")
@limiter.exempt
def results_page(slug: str) -> ResponseReturnValue:
    """The public results, within the results mode; live over the event stream with
    JavaScript, and refreshing by itself without it. `?screen=projector` sets it in large
    type for a venue screen."""
    snap = published.snapshot(slug)  # the live cache (web.published): no recount per view
    projector = request.args.get("screen") == "projector"
    etag = published.page_etag(snap, "projector" if projector else "page")
    if published.unchanged(etag):
        return published.not_modified(etag)
    page = published.page(snap, etag, lambda: _results(slug, snap, projector=projector))
    return published.conditional(page, etag, shared=True)  # the public page, for everyone


def _results(slug: str, snap: live.Snapshot, *, projector: bool) -> str:
    poll = polls.get_poll(slug)
    doc = snap.docs.public
    status = PollStatus(doc["status"])
    return render_template(
        "results.html",
        poll=poll,
        doc=doc,
        shown=shown_places(doc),
        refresh=refresh_hint(poll, status),
        projector=projector,
        board_published=receipts.publication(poll, status).published,
        # view=public: an organizer's browser gets what the room sees (it may be projected).
        stream_url=url_for("stream.events", slug=poll.slug, view="public"),
    )
