"""The ballot and what follows it: the gallery page, confirming, casting, the receipt."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from flask import Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta, ngettext
from flask_babel import gettext as _

from voting.domain.ballot import ChoiceProblem, InvalidChoice, check_choices
from voting.domain.errors import AlreadyVoted, InvalidRequest, InvalidToken, PollNotOpen
from voting.domain.statuses import Eligibility, PollStatus
from voting.extensions import limiter
from voting.models import Poll, Project, utcnow
from voting.services import ballots, held, polls, receipts
from voting.services.projects import BallotEntry
from voting.web import limits
from voting.web.public import skeleton
from voting.web.public.blueprint import bp
from voting.web.public.gallery import (
    CardStyle,
    active_projects,
    card_list,
    deck,
    shuffled_positions,
)
from voting.web.public.visitor import (
    CAN_VOTE,
    PageState,
    Visitor,
    page_state,
    poll_path,
    visitor_for,
)
from voting.web.voter_cookie import cookie_name

ORDER_COOKIE_PREFIX = "vo_"
THIRTY_DAYS = 60 * 60 * 24 * 30

# The page's words for each way a ballot's choices break the rules (voting.domain.ballot);
# the API answers with the rule's own English sentence instead.
_CHOICE_MESSAGES: dict[ChoiceProblem, Callable[[InvalidChoice, Mapping[str, Project]], str]] = {
    ChoiceProblem.EMPTY: lambda exc, projects: (
        _("Pick a project first.")
        if exc.max_choices == 1
        else _("Pick at least one project first.")
    ),
    ChoiceProblem.TOO_MANY: lambda exc, projects: ngettext(
        "You can pick at most %(num)d project.",
        "You can pick at most %(num)d projects.",
        exc.max_choices,
    ),
    ChoiceProblem.OWN_TEAM: lambda exc, projects: _(
        "You cannot vote for %(title)s: it is your own team's project.",
        title=_title(exc.slug, projects),
    ),
}


def choice_message(exc: InvalidRequest, projects: Mapping[str, Project]) -> str:
    """The page's translated sentence for a refused choice (malformed, duplicate, unknown: one)."""
    if isinstance(exc, InvalidChoice) and exc.reason in _CHOICE_MESSAGES:
        return _CHOICE_MESSAGES[exc.reason](exc, projects)
    return _("That choice is not on this ballot. Please pick again.")


def _title(slug: str | None, projects: Mapping[str, Project]) -> str:
    project = projects.get(slug or "")
    return project.title if project else slug or ""


def _by_slug(poll: Poll) -> dict[str, Project]:
    return {p.slug: p for p in active_projects(poll)}


def _order_seed(poll: Poll, visitor: Visitor) -> tuple[str, str | None]:
    """A seed for this voter's order: their token id, else a random per-browser cookie."""
    if visitor.token is not None:
        return f"{poll.id}:{visitor.token.token_id}", None
    existing = request.cookies.get(f"{ORDER_COOKIE_PREFIX}{poll.id}", "")
    if re.fullmatch(r"[0-9a-f]{16}", existing):
        return f"{poll.id}:{existing}", None
    fresh = secrets.token_hex(8)
    return f"{poll.id}:{fresh}", fresh


def _render_ballot(
    poll: Poll,
    status: PollStatus,
    visitor: Visitor,
    state: PageState,
    *,
    checked: Iterable[str] = (),
    error: str | None = None,
    code: int = 200,
    entries: Sequence[BallotEntry] | None = None,
) -> Response:
    if entries is None:
        entries = held.ballot_entries(poll)
    cards_of = deck(entries)
    seed, new_cookie = _order_seed(poll, visitor)
    filters = cards_of.filters(request.args.to_dict())
    can_vote = state in CAN_VOTE
    path = poll_path(poll)
    style = CardStyle(
        base=path, kind="radio" if poll.max_choices == 1 else "checkbox", can_vote=can_vote
    )
    cards, shown, any_checked = card_list(
        cards_of,
        shuffled_positions(len(cards_of.entries), seed),
        style,
        filters=filters,
        checked=frozenset(checked),
        excluded=visitor.excluded,
    )
    opens_in = _seconds_until(poll.opens_at)
    body = skeleton.render(
        "ballot.html",
        cards,
        poll=poll,
        status=status,
        state=state,
        can_vote=can_vote,
        receipt=visitor.receipt,
        total=len(entries),
        shown=shown,
        any_checked=any_checked,
        filters=filters,
        error=error,
        opens_at=poll.opens_at,
        opens_in=opens_in,
        opens_in_text=(
            format_timedelta(timedelta(seconds=opens_in), threshold=1.5)
            if opens_in is not None
            else ""
        ),
        claim_url=_claim_url(poll),
        fingerprint=held.fingerprint(poll, status),
    )
    response = Response(body, status=code, mimetype="text/html")
    if new_cookie:
        response.set_cookie(
            f"{ORDER_COOKIE_PREFIX}{poll.id}",
            new_cookie,
            max_age=THIRTY_DAYS,
            path=path,
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
    """Where a visitor without a token gets one: the roster claim, an open poll's pass, or
    (invite polls) the page that takes a voting card's printed code."""
    if poll.eligibility == Eligibility.OPEN:
        return url_for("claim.join", slug=poll.slug)
    return url_for("claim.claim", slug=poll.slug)


# "Vote now": a hall opens this page at once from one conference NAT. What it reads alike
# for everyone is held (services.held), so it is exempt from the per-address default limit,
# as the results page is; the ballot POST keeps its own limits (web.limits).
@bp.get("/p/<slug>")
@limiter.exempt
def ballot(slug: str) -> ResponseReturnValue:
    poll = held.poll(slug)  # detached: columns only, until the pages that need more
    # The cards' rows also give the schedule its count of places (no ORM load of choices).
    entries = held.ballot_entries(poll)
    status = polls.effective_status(poll, places=len(entries))
    visitor = visitor_for(poll)
    state = page_state(poll, status, visitor)
    if state in (PageState.CLOSED, PageState.VOTED, PageState.INVALID):
        poll = polls.get_poll(slug)
    if state == PageState.CLOSED:
        return render_template(
            "notice.html", kind="closed", poll=poll, receipt=visitor.receipt, status=status
        )
    if state == PageState.VOTED:
        return render_template(
            "receipt.html",
            poll=poll,
            receipt=visitor.receipt,
            voted_for=receipts.voted_for(poll, visitor.receipt or ""),
            already=True,
            board_published=receipts.publication(poll, status).published,
        )
    if state == PageState.INVALID:
        response = Response(
            render_template("notice.html", kind="invalid-link", poll=poll, reason=visitor.problem),
            mimetype="text/html",
        )
        response.delete_cookie(cookie_name(poll), path=poll_path(poll))
        return response
    picked = request.args.getlist("choice")
    return _render_ballot(poll, status, visitor, state, checked=picked, entries=entries)


@bp.post("/p/<slug>/confirm")
def confirm(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    visitor = visitor_for(poll)
    state = page_state(poll, status, visitor)
    if state not in CAN_VOTE:
        return redirect(poll_path(poll), code=303)
    chosen = request.form.getlist("choice")
    by_slug = _by_slug(poll)
    try:
        # The same rules the ballot is cast under, checked before the voter confirms.
        check_choices(
            chosen,
            max_choices=poll.max_choices,
            active={s: p.id for s, p in by_slug.items()},
            excluded=visitor.excluded,
        )
    except InvalidChoice as exc:
        problem = choice_message(exc, by_slug)
        return _render_ballot(poll, status, visitor, state, checked=chosen, error=problem, code=400)
    return render_template(
        "confirm.html",
        poll=poll,
        chosen=[by_slug[s] for s in chosen],
        revote=state == PageState.REVOTE,
    )


@bp.post("/p/<slug>/cast")
@limiter.exempt  # the same limits as the API's ballots (web.limits), each refusal counted
def cast(slug: str) -> ResponseReturnValue:
    limits.check_ballot(limits.form_ballot_token())
    poll = polls.get_poll(slug)
    visitor = visitor_for(poll)
    if visitor.problem:
        limits.count_refused()
        return render_template(
            "notice.html", kind="invalid-link", poll=poll, reason=visitor.problem
        ), 403
    if visitor.raw is None:
        limits.count_refused()
        return render_template("notice.html", kind="no-token", poll=poll), 403
    choices = request.form.getlist("choice")
    try:
        ballots.cast_ballot(slug, visitor.raw, choices, on_repeat=limits.count_token_repeat)
    except (AlreadyVoted, PollNotOpen):
        limits.count_refused()
        # The ballot page now shows this voter's receipt, or that the poll has closed.
        return redirect(poll_path(poll), code=303)
    except InvalidToken:
        limits.count_refused()
        # Revoked between the check above and the cast.
        return render_template("notice.html", kind="invalid-link", poll=poll), 403
    except InvalidRequest as exc:
        limits.count_refused()
        status = polls.effective_status(poll)
        state = page_state(poll, status, visitor)
        problem = choice_message(exc, _by_slug(poll))
        return _render_ballot(
            poll, status, visitor, state, checked=choices, error=problem, code=400
        )
    return redirect(url_for("public.receipt", slug=slug), code=303)


@bp.get("/p/<slug>/receipt")
def receipt(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    visitor = visitor_for(poll)
    if not visitor.receipt:
        return redirect(poll_path(poll), code=303)
    # Never cached: PRIVATE_PAGE in voting.web.security.
    return render_template(
        "receipt.html",
        poll=poll,
        receipt=visitor.receipt,
        voted_for=receipts.voted_for(poll, visitor.receipt),
        already=False,
        board_published=receipts.publication(poll).published,
    )
