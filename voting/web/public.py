"""Pages for attendees: home, voter link landing, ballot, project detail, confirm, receipt.

Plain HTML forms do everything; static/app.js only adds instant filtering and small
comforts. Each state of a poll, as this visitor sees it, has its own page: not yet open,
open (with or without a voting link), already voted, closed.
"""

from __future__ import annotations

import random
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta, ngettext
from flask_babel import gettext as _

from voting.domain.errors import AlreadyVoted, InvalidRequest, InvalidToken, NotFound, PollNotOpen
from voting.domain.statuses import FINAL, Eligibility, PollStatus
from voting.domain.tokens import VoterToken
from voting.extensions import limiter
from voting.models import Poll, Project, utcnow
from voting.services import ballots, polls, voters
from voting.web import assets
from voting.web.limits import address_key, cookie_token_key, setting
from voting.web.presenting import refresh_hint, shown_places
from voting.web.voter_cookie import cookie_name, set_voter_cookie

bp = Blueprint("public", __name__)
bp.add_app_template_global(assets.static_url, "static_url")
bp.after_app_request(assets.cache_static)

ORDER_COOKIE_PREFIX = "vo_"
THIRTY_DAYS = 60 * 60 * 24 * 30
SUMMARY_CHARS = 110

# Demo videos may be embedded from these hosts only, and only after a tap (static/app.js).
_YOUTUBE = re.compile(
    r"^https://(?:www\.|m\.)?(?:youtube\.com/(?:watch\?(?:.*&)?v=|embed/|shorts/|live/)|youtu\.be/)"
    r"([A-Za-z0-9_-]{11})(?:[?&#/].*)?$"
)
_VIMEO = re.compile(r"^https://(?:www\.)?vimeo\.com/(\d{6,12})(?:[?#/].*)?$")
EMBED_HOSTS = ("https://www.youtube-nocookie.com", "https://player.vimeo.com")
CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "style-src 'self'",
        f"frame-src {' '.join(EMBED_HOSTS)}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)


# -- who is looking --------------------------------------------------------------------------


_cookie_name = cookie_name


def _poll_path(poll: Poll) -> str:
    return url_for("public.ballot", slug=poll.slug)


@dataclass(frozen=True)
class Visitor:
    """This browser's voting link for the poll, as its cookie holds it."""

    raw: str | None = None
    token: VoterToken | None = None
    receipt: str | None = None
    problem: str | None = None  # why the cookie's token cannot vote (UnusableLink.reason)

    @property
    def excluded(self) -> frozenset[int]:
        return self.token.excluded if self.token else frozenset()


def _visitor(poll: Poll) -> Visitor:
    raw = request.cookies.get(_cookie_name(poll))
    if not raw:
        return Visitor()
    try:
        voter = voters.check_token(raw, poll)
    except voters.UnusableLink as exc:
        return Visitor(problem=exc.reason)
    return Visitor(raw=raw, token=voter.token, receipt=voter.receipt)


def _state(poll: Poll, status: PollStatus, visitor: Visitor) -> str:
    """What this visitor can do with this poll now."""
    if status == PollStatus.DRAFT:
        return "not-open"
    if status != PollStatus.OPEN:
        return "closed"
    if visitor.receipt and not poll.allow_revote:
        return "voted"
    if visitor.problem:
        return "invalid"
    if visitor.token is None:
        return "no-token"
    return "revote" if visitor.receipt else "vote"


# -- the gallery -------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lowercase without accents, so "tomas" finds "Tomás" (static/app.js folds the same way)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


def short_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The card's one-line summary: cut at a word, with an ellipsis, when too long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:-")
    return cut + "…"


def video_embed(url: str | None) -> str | None:
    """A privacy-friendly embed URL for a YouTube or Vimeo demo, or None for anything else."""
    if not url:
        return None
    if match := _YOUTUBE.match(url):
        return f"https://www.youtube-nocookie.com/embed/{match.group(1)}?autoplay=1"
    if match := _VIMEO.match(url):
        return f"https://player.vimeo.com/video/{match.group(1)}?autoplay=1&dnt=1"
    return None


@dataclass
class Card:
    project: Project
    summary: str
    shown: bool = True
    checked: bool = False
    excluded: bool = False


@dataclass
class Filters:
    q: str = ""
    category: str = ""
    theme: str = ""
    categories: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.theme)

    def matches(self, project: Project) -> bool:
        if self.category and project.category != self.category:
            return False
        if self.theme and project.theme != self.theme:
            return False
        words = fold(self.q).split()
        if not words:
            return True
        haystack = fold(
            " ".join(
                [
                    project.title,
                    project.team,
                    short_summary(project.summary),
                    project.category,
                    project.theme,
                ]
            )
        )
        return all(word in haystack for word in words)


def _in_order(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    present = set(names) - {""}
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(present, key=lambda n: (rank.get(n, len(rank)), n))


def _filters(projects: Sequence[Project], args: dict[str, str]) -> Filters:
    categories = _in_order((p.category for p in projects), current_app.config["CATEGORIES"])
    themes = _in_order((p.theme for p in projects), current_app.config["THEMES"])
    category = args.get("category", "")
    theme = args.get("theme", "")
    return Filters(
        q=args.get("q", "").strip()[:100],
        category=category if category in categories else "",
        theme=theme if theme in themes else "",
        categories=categories,
        themes=themes,
    )


def _order_seed(poll: Poll, visitor: Visitor) -> tuple[str, str | None]:
    """A seed for this voter's order: their token id, else a random per-browser cookie."""
    if visitor.token is not None:
        return f"{poll.id}:{visitor.token.token_id}", None
    existing = request.cookies.get(f"{ORDER_COOKIE_PREFIX}{poll.id}", "")
    if re.fullmatch(r"[0-9a-f]{16}", existing):
        return f"{poll.id}:{existing}", None
    fresh = secrets.token_hex(8)
    return f"{poll.id}:{fresh}", fresh


def shuffled(projects: Sequence[Project], seed: str) -> list[Project]:
    """The projects in an order fixed by the seed: shuffled per voter, stable for that voter."""
    ordered = sorted(projects, key=lambda p: p.slug)
    random.Random(seed).shuffle(ordered)
    return ordered


def _active_projects(poll: Poll) -> list[Project]:
    return [c.project for c in poll.choices if not c.withdrawn]


def _render_ballot(
    poll: Poll,
    status: str,
    visitor: Visitor,
    state: str,
    *,
    checked: Iterable[str] = (),
    error: str | None = None,
    code: int = 200,
) -> Response:
    projects = _active_projects(poll)
    seed, new_cookie = _order_seed(poll, visitor)
    filters = _filters(projects, request.args.to_dict())
    wanted = set(checked)
    cards = [
        Card(
            project=p,
            summary=short_summary(p.summary),
            shown=filters.matches(p),
            checked=p.slug in wanted,
            excluded=p.id in visitor.excluded,
        )
        for p in shuffled(projects, seed)
    ]
    opens_in = _seconds_until(poll.opens_at)
    body = render_template(
        "ballot.html",
        poll=poll,
        status=status,
        state=state,
        can_vote=state in ("vote", "revote"),
        receipt=visitor.receipt,
        cards=cards,
        shown=sum(1 for c in cards if c.shown),
        filters=filters,
        error=error,
        opens_at=poll.opens_at,
        opens_in=opens_in,
        opens_in_text=format_timedelta(timedelta(seconds=opens_in or 0), threshold=1.5),
        claim_url=_claim_url(poll),
    )
    response = Response(body, status=code, mimetype="text/html")
    if new_cookie:
        response.set_cookie(
            f"{ORDER_COOKIE_PREFIX}{poll.id}",
            new_cookie,
            max_age=THIRTY_DAYS,
            path=_poll_path(poll),
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response


def _seconds_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return max(0, int((moment - utcnow()).total_seconds()))


def _claim_url(poll: Poll) -> str | None:
    """Where a visitor without a token gets one: roster claim, or an open poll's pass."""
    if poll.eligibility == Eligibility.ROSTER:
        return url_for("claim.claim", slug=poll.slug)
    if poll.eligibility == Eligibility.OPEN:
        return url_for("claim.join", slug=poll.slug)
    return None


# -- pages -----------------------------------------------------------------------------------


@bp.after_request
def _headers(response: Response) -> Response:
    """A strict Content-Security-Policy on our pages: nothing loads from another host."""
    if response.mimetype == "text/html" and request.endpoint != "public.results_page":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.get("/")
def home() -> ResponseReturnValue:
    by_status: dict[PollStatus, list[Poll]] = {}
    for poll in polls.list_polls():
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
        page = Response(
            render_template("notice.html", kind="invalid-link", reason=exc.reason),
            status=403,
            mimetype="text/html",
        )
        page.headers["Referrer-Policy"] = "no-referrer"
        page.headers["Cache-Control"] = "no-store"
        return page
    return set_voter_cookie(redirect(_poll_path(voter.poll), code=303), voter.poll, token)


@bp.get("/p/<slug>")
def ballot(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    visitor = _visitor(poll)
    state = _state(poll, status, visitor)
    if state == "closed":
        return render_template("notice.html", kind="closed", poll=poll, receipt=visitor.receipt)
    if state == "voted":
        return render_template("receipt.html", poll=poll, receipt=visitor.receipt, already=True)
    if state == "invalid":
        response = Response(
            render_template("notice.html", kind="invalid-link", poll=poll, reason=visitor.problem),
            mimetype="text/html",
        )
        response.delete_cookie(_cookie_name(poll), path=_poll_path(poll))
        return response
    picked = request.args.getlist("choice")
    return _render_ballot(poll, status, visitor, state, checked=picked)


@bp.get("/p/<slug>/project/<project>")
def project_detail(slug: str, project: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    found = next((p for p in _active_projects(poll) if p.slug == project), None)
    if found is None:
        raise NotFound(f"There is no project {project!r} in this poll.")
    status = polls.effective_status(poll)
    visitor = _visitor(poll)
    state = _state(poll, status, visitor)
    excluded = found.id in visitor.excluded
    return render_template(
        "project.html",
        poll=poll,
        project=found,
        state=state,
        excluded=excluded,
        can_choose=state in ("vote", "revote") and not excluded,
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
    base = _poll_path(poll)
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.path == base:
        kept: dict[str, Any] = {
            k: v for k, v in parse_qs(parts.query).items() if k in ("q", "category", "theme")
        }
        return url_for("public.ballot", slug=poll.slug, **kept)
    return base


def _validate_choices(poll: Poll, visitor: Visitor, chosen: list[str]) -> str | None:
    """The reason these choices cannot make a ballot, translated, or None."""
    active = {p.slug: p for p in _active_projects(poll)}
    if not chosen:
        return (
            _("Pick a project first.")
            if poll.max_choices == 1
            else _("Pick at least one project first.")
        )
    if len(set(chosen)) != len(chosen) or any(s not in active for s in chosen):
        return _("That choice is not on this ballot. Please pick again.")
    if len(chosen) > poll.max_choices:
        return ngettext(
            "You can pick at most %(num)d project.",
            "You can pick at most %(num)d projects.",
            poll.max_choices,
        )
    for slug in chosen:
        if active[slug].id in visitor.excluded:
            return _(
                "You cannot vote for %(title)s: it is your own team's project.",
                title=active[slug].title,
            )
    return None


@bp.post("/p/<slug>/confirm")
def confirm(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    visitor = _visitor(poll)
    state = _state(poll, status, visitor)
    if state not in ("vote", "revote"):
        return redirect(_poll_path(poll), code=303)
    chosen = request.form.getlist("choice")
    problem = _validate_choices(poll, visitor, chosen)
    if problem:
        return _render_ballot(poll, status, visitor, state, checked=chosen, error=problem, code=400)
    by_slug = {p.slug: p for p in _active_projects(poll)}
    return render_template(
        "confirm.html", poll=poll, chosen=[by_slug[s] for s in chosen], revote=state == "revote"
    )


@bp.post("/p/<slug>/cast")
@limiter.limit(setting("RATELIMIT_BALLOT_PER_TOKEN"), key_func=cookie_token_key)
@limiter.limit(setting("RATELIMIT_BALLOT_PER_IP"), key_func=address_key)
def cast(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    visitor = _visitor(poll)
    if visitor.problem:
        return render_template(
            "notice.html", kind="invalid-link", poll=poll, reason=visitor.problem
        ), 403
    if visitor.raw is None:
        return render_template("notice.html", kind="no-token", poll=poll), 403
    choices = request.form.getlist("choice")
    try:
        ballots.cast_ballot(slug, visitor.raw, choices)
    except (AlreadyVoted, PollNotOpen):
        # The ballot page now shows this voter's receipt, or that the poll has closed.
        return redirect(_poll_path(poll), code=303)
    except InvalidToken:
        # Revoked between the check above and the cast.
        return render_template("notice.html", kind="invalid-link", poll=poll), 403
    except InvalidRequest:
        status = polls.effective_status(poll)
        problem = _validate_choices(poll, visitor, choices) or _(
            "That choice is not on this ballot. Please pick again."
        )
        state = _state(poll, status, visitor)
        return _render_ballot(
            poll, status, visitor, state, checked=choices, error=problem, code=400
        )
    return redirect(url_for("public.receipt", slug=slug), code=303)


@bp.get("/p/<slug>/receipt")
def receipt(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    visitor = _visitor(poll)
    if not visitor.receipt:
        return redirect(_poll_path(poll), code=303)
    response = Response(
        render_template("receipt.html", poll=poll, receipt=visitor.receipt, already=False),
        mimetype="text/html",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


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
        shown=shown_places(doc),
        refresh=refresh_hint(poll, doc["status"]),
        # view=public: an organizer's browser gets what the room sees (it may be projected).
        stream_url=url_for("stream.events", slug=poll.slug, view="public"),
    )
