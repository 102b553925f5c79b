"""Results documents: who may see counts (rule 5), the staged reveal, and the poll's description."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from voting import live
from voting.domain import schedule, tally
from voting.domain.errors import NotFound
from voting.domain.statuses import FINAL, PollStatus, ResultsMode
from voting.domain.timestamps import iso
from voting.extensions import db
from voting.links import public_url
from voting.models import Poll, utcnow
from voting.services.polls.counting import counted
from voting.services.polls.fingerprint import published_fingerprint
from voting.services.polls.lifecycle import active_choice_count, effective_status, settle_schedule


def counts_visible(poll: Poll, status: PollStatus, *, organizer: bool) -> bool:
    """Rule 5: may this viewer see vote counts now?"""
    if poll.results_mode == ResultsMode.LIVE:
        return True
    if poll.results_mode == ResultsMode.HIDDEN:
        return organizer or status == PollStatus.REVEALED
    return status in FINAL if organizer else status == PollStatus.REVEALED


@dataclass(frozen=True)
class Standing:
    """One count of a poll at one moment, from which every audience's document is cut."""

    now: datetime
    status: PollStatus
    turnout: int
    placings: list[tally.Placing]
    fingerprint: str | None = None


def _standing(poll: Poll, now: datetime) -> Standing:
    ballots_cast, votes = counted(poll)
    status = effective_status(poll, now)
    return Standing(
        now=now,
        status=status,
        turnout=ballots_cast,
        placings=tally.rank(votes, poll.tie_seed),
        fingerprint=published_fingerprint(poll, status),
    )


def results_view(poll: Poll, *, organizer: bool = False) -> dict[str, Any]:
    """The results document for the API, the stream and the CLI; hidden counts never enter it."""
    poll = settle_schedule(poll)
    return results_document(poll, _standing(poll, utcnow()), organizer=organizer)


def results_document(poll: Poll, standing: Standing, *, organizer: bool) -> dict[str, Any]:
    """Cut one viewer's document from a standing (rule 5, and the staged reveal)."""
    status, now = standing.status, standing.now
    titles = {c.project.slug: c.project for c in poll.choices if not c.withdrawn}
    doc: dict[str, Any] = {
        "poll": poll.slug,
        "title": poll.title,
        "status": status,
        "results_mode": poll.results_mode,
        "turnout": standing.turnout,
        "places": len(titles),
        "opens_at": iso(poll.opens_at),
        "closes_at": iso(poll.closes_at),
        "tie_seed_hash": poll.tie_seed_hash if status != PollStatus.DRAFT else None,
        "fingerprint": standing.fingerprint,
    }
    step = min(len(titles), schedule.auto_step(poll, now))
    placed = None
    # The places this audience is shown: during the reveal the public sees the revealed
    # ones (a live poll's document holds every count, but the pages show the reveal).
    shown = standing.placings
    if counts_visible(poll, status, organizer=organizer):
        placed = standing.placings
    elif status == PollStatus.REVEALING and poll.results_mode != ResultsMode.LIVE:
        placed = tally.revealed(standing.placings, step)
    if status == PollStatus.REVEALING and not organizer:
        shown = tally.revealed(standing.placings, step)
    if status in (PollStatus.REVEALING, PollStatus.REVEALED):
        doc["reveal_step"] = step if status == PollStatus.REVEALING else len(titles)
    if status == PollStatus.REVEALED:
        doc["tie_seed"] = poll.tie_seed
    if placed is not None:
        # Ties name shown places only, so a tie mark never hints at a hidden count.
        on_show = {p.project for p in shown}
        marked = tally.tied(placed, among=on_show)
        doc["results"] = [
            {
                "project": p.project,
                "title": titles[p.project].title,
                "team": titles[p.project].team,
                "votes": p.votes,
                "rank": p.rank,
                # Its partners are the shown places with as many votes (web.presenting): a
                # list per row would make a 100-way tie at 0 votes 180 KB on every stream.
                # A place the staged reveal has not shown yet is never marked.
                "tied": p.project in marked,
            }
            for p in placed
        ]
        if marked:
            doc["tie_break"] = tally.TIE_BREAK_RULE
            doc["tie_break_help"] = public_url("public.results_page", slug=poll.slug) + "#tie-break"
    return doc


def live_documents(slug: str) -> live.Documents | None:
    """Both audiences' documents for the live snapshot, counted once; None if no such poll."""
    poll = db.session.execute(select(Poll).where(Poll.slug == slug)).scalar_one_or_none()
    if poll is None:
        return None
    poll = settle_schedule(poll)
    now = utcnow()
    standing = _standing(poll, now)
    change = schedule.next_change_at(poll, active_choice_count(poll), now)
    return live.Documents(
        ident=live.poll_ident(poll),
        slug=poll.slug,
        public=results_document(poll, standing, organizer=False),
        organizer=results_document(poll, standing, organizer=True),
        overlay_key_version=poll.overlay_key_version,
        next_change_at=change.timestamp() if change else None,
        poll_id=poll.id,
    )


def cache_ident(slug: str) -> str:
    """The poll's identity in the live cache (live.poll_ident) from one light query; NotFound."""
    row = db.session.execute(
        select(Poll.slug, Poll.tie_seed_hash).where(Poll.slug == slug)
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    return live.poll_ident(row)


def poll_document(poll: Poll) -> dict[str, Any]:
    """The public description of a poll and its choices."""
    status = effective_status(poll)
    return {
        "slug": poll.slug,
        "title": poll.title,
        "description": poll.description,
        "status": status,
        "method": poll.method,
        "max_choices": poll.max_choices,
        "eligibility": poll.eligibility,
        "results": poll.results_mode,
        "revote": poll.allow_revote,
        "opens_at": iso(poll.opens_at),
        "closes_at": iso(poll.closes_at),
        "tie_seed_hash": poll.tie_seed_hash if status != PollStatus.DRAFT else None,
        "fingerprint": published_fingerprint(poll, status),
        "choices": [
            {
                "project": c.project.slug,
                "title": c.project.title,
                "team": c.project.team,
                "category": c.project.category,
                "theme": c.project.theme,
            }
            for c in poll.choices
            if not c.withdrawn
        ],
    }
