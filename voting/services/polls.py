"""Polls: creation, the lifecycle (open, close, reveal), the schedule, and results.

Hard close. A ballot's transaction locks the poll row FOR KEY SHARE and checks the
effective status after it holds the lock; closing locks the same row FOR UPDATE. The two
lock modes conflict, so a close waits for every ballot already past its check to commit,
and every ballot that locks after the close commits sees the poll closed. The tally taken
after the close commits is therefore final. A scheduled close (closes_at passing) is
settled the same way: the first reader that finds it due takes the FOR UPDATE lock and
records it before counting. On SQLite every write transaction begins IMMEDIATE, which
serialises writers outright.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select

from voting import live
from voting.database import atomic, begin_write
from voting.domain import schedule, tally
from voting.domain.errors import InvalidRequest, NotFound, PollStateError
from voting.domain.statuses import BEFORE_CLOSE, FINAL, Eligibility, Method, PollStatus, ResultsMode
from voting.extensions import db
from voting.models import (
    Ballot,
    BallotChoice,
    Poll,
    PollChoice,
    Project,
    utcnow,
)
from voting.services import audit

SelectT = TypeVar("SelectT", bound=Select[Any])

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The actor named in the audit log when a poll opens or closes at its scheduled time.
SCHEDULE_ACTOR = "schedule"


def effective_status(poll: Poll, now: datetime | None = None) -> PollStatus:
    """The status that applies now: the stored one, moved on by the schedule and the clock."""
    return schedule.effective_status(poll, active_choice_count(poll), now or utcnow())


def active_choice_count(poll: Poll) -> int:
    return sum(1 for c in poll.choices if not c.withdrawn)


def get_poll(slug: str) -> Poll:
    """The poll with this slug, or NotFound."""
    poll = db.session.execute(select(Poll).where(Poll.slug == slug)).scalar_one_or_none()
    if poll is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    return poll


def with_poll_lock(stmt: SelectT, *, exclusive: bool) -> SelectT:
    """The statement, which selects from polls, taking the poll row lock (see module doc).

    exclusive=False is a ballot's FOR KEY SHARE, exclusive=True a lifecycle change's
    FOR UPDATE. Only the polls row is locked, whatever else the statement joins. SQLite
    needs no row lock: its write transactions begin IMMEDIATE (voting.database).
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return stmt
    if exclusive:
        return stmt.with_for_update(of=Poll.__table__)
    return stmt.with_for_update(read=True, key_share=True, of=Poll.__table__)


def lock_poll(slug: str, *, exclusive: bool) -> Poll:
    """Load the poll inside the current transaction, holding its row lock (see module doc).

    Under the exclusive lock, whatever the schedule did since it was last written down is
    recorded first (`_record_schedule`), so every organizer action sees, and audits after,
    the poll's real state. It commits with the caller's transaction, or not at all.
    """
    begin_write()
    stmt = select(Poll).where(Poll.slug == slug).execution_options(populate_existing=True)
    poll = db.session.execute(with_poll_lock(stmt, exclusive=exclusive)).scalar_one_or_none()
    if poll is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    if exclusive:
        _record_schedule(poll)
    return poll


@dataclass
class PollSpec:
    slug: str
    title: str
    description: str = ""
    method: str = Method.PLURALITY
    max_choices: int | None = None
    eligibility: str = Eligibility.INVITE
    results_mode: str = ResultsMode.HIDDEN
    allow_revote: bool = False
    categories: Sequence[str] = ()
    projects: Sequence[str] = ()
    opens_at: datetime | None = None
    closes_at: datetime | None = None


def _validate(spec: PollSpec, n_choices: int) -> int:
    if not SLUG_RE.match(spec.slug) or len(spec.slug) > 80:
        raise InvalidRequest(
            "A poll slug may hold only lowercase letters, digits and single hyphens."
        )
    if not spec.title.strip():
        raise InvalidRequest("A poll needs a title.")
    if spec.method not in tuple(Method):
        raise InvalidRequest(f"The method must be one of: {', '.join(Method)}.")
    if spec.eligibility not in tuple(Eligibility):
        raise InvalidRequest(f"Eligibility must be one of: {', '.join(Eligibility)}.")
    if spec.results_mode not in tuple(ResultsMode):
        raise InvalidRequest(f"The results mode must be one of: {', '.join(ResultsMode)}.")
    max_choices = spec.max_choices or (1 if spec.method == Method.PLURALITY else n_choices)
    if spec.method == Method.PLURALITY and max_choices != 1:
        raise InvalidRequest("A plurality poll takes exactly one choice; use --method approval.")
    if max_choices < 1:
        raise InvalidRequest("max choices must be at least 1.")
    if spec.opens_at and spec.closes_at and spec.closes_at <= spec.opens_at:
        raise InvalidRequest("The poll must close after it opens.")
    for moment in (spec.opens_at, spec.closes_at):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequest("Schedule times need a time zone (for example 2026-12-01T18:00Z).")
    return max_choices


@atomic
def create_poll(spec: PollSpec, *, actor: str) -> Poll:
    """A draft poll over all projects, or those of the named categories or slugs."""
    begin_write()
    if db.session.execute(select(Poll.id).where(Poll.slug == spec.slug)).first():
        raise InvalidRequest(f"A poll called {spec.slug!r} already exists.")
    projects = _projects_for(spec)
    max_choices = _validate(spec, len(projects))
    check_schedule(spec.opens_at, spec.closes_at)
    seed = tally.new_seed()
    poll = Poll(
        slug=spec.slug,
        title=spec.title.strip(),
        description=spec.description,
        method=spec.method,
        max_choices=max_choices,
        eligibility=spec.eligibility,
        results_mode=spec.results_mode,
        allow_revote=spec.allow_revote,
        opens_at=spec.opens_at,
        closes_at=spec.closes_at,
        tie_seed=seed,
        tie_seed_hash=tally.seed_hash(seed),
        status=PollStatus.DRAFT,
        reveal_step=0,
        overlay_key_version=1,
    )
    poll.choices = [PollChoice(project=p) for p in projects]
    db.session.add(poll)
    db.session.flush()
    audit.record(
        actor,
        "poll.create",
        poll.slug,
        title=poll.title,
        method=poll.method,
        max_choices=poll.max_choices,
        eligibility=poll.eligibility,
        results_mode=poll.results_mode,
        allow_revote=poll.allow_revote,
        projects=[p.slug for p in projects],
    )
    db.session.commit()
    return poll


@atomic
def open_poll(slug: str, *, actor: str) -> Poll:
    """Open for voting now; opening an open poll does nothing."""
    poll = lock_poll(slug, exclusive=True)
    status = effective_status(poll)
    if status == PollStatus.OPEN:
        db.session.commit()  # keeps a scheduled opening that lock_poll has just recorded
        return poll
    if status != PollStatus.DRAFT:
        raise PollStateError("This poll has closed; a closed poll cannot open again.")
    poll.status = PollStatus.OPEN
    poll.opened_at = utcnow()
    audit.record(actor, "poll.open", poll.slug, tie_seed_hash=poll.tie_seed_hash)
    db.session.commit()
    live.notify(poll.slug)
    return poll


@atomic
def close_poll(slug: str, *, actor: str) -> Poll:
    """Close now; no ballot commits after this returns. Closing a closed poll does nothing."""
    poll = lock_poll(slug, exclusive=True)
    status = effective_status(poll)
    if status == PollStatus.DRAFT:
        raise PollStateError("This poll was never opened, so there is nothing to close.")
    if status != PollStatus.OPEN:
        db.session.commit()  # keeps a scheduled close that lock_poll has just recorded
        live.notify(poll.slug)
        return poll
    poll.status = PollStatus.CLOSED
    poll.closed_at = utcnow()
    audit.record(actor, "poll.close", poll.slug, turnout=turnout(poll))
    db.session.commit()
    live.notify(poll.slug)
    return poll


def _record_schedule(poll: Poll) -> None:
    """Store what the schedule did on its own, and audit it as the schedule's doing.

    The organizer's schedule (audited when the poll was created or edited) opens and closes
    the poll at its times; the first caller that holds the poll's exclusive lock afterwards
    (lock_poll) writes the change down, once, with the scheduled moments.
    """
    status = effective_status(poll)
    if poll.status == PollStatus.DRAFT and status in (PollStatus.OPEN, PollStatus.CLOSED):
        poll.status, poll.opened_at = PollStatus.OPEN, poll.opens_at
        audit.record(
            SCHEDULE_ACTOR,
            "poll.open",
            poll.slug,
            at=_iso(poll.opens_at),
            tie_seed_hash=poll.tie_seed_hash,
        )
    if poll.status == PollStatus.OPEN and status == PollStatus.CLOSED:
        poll.status = PollStatus.CLOSED
        poll.opened_at = poll.opened_at or poll.opens_at
        poll.closed_at = poll.closes_at
        audit.record(
            SCHEDULE_ACTOR, "poll.close", poll.slug, at=_iso(poll.closes_at), turnout=turnout(poll)
        )


@atomic
def settle_schedule(poll: Poll) -> Poll:
    """If the schedule has closed the poll, record it under the close lock before counting."""
    if poll.status in BEFORE_CLOSE and effective_status(poll) == PollStatus.CLOSED:
        db.session.rollback()
        poll = lock_poll(poll.slug, exclusive=True)  # records the close
        db.session.commit()
        live.notify(poll.slug)
    return poll


@atomic
def reveal(slug: str, *, actor: str, step: bool = False, auto_seconds: int | None = None) -> Poll:
    """Publish the results: all at once, one more place (step), or auto-played."""
    poll = lock_poll(slug, exclusive=True)
    status = effective_status(poll)
    if status in BEFORE_CLOSE:
        raise PollStateError("Close the poll before revealing its results.")
    total = active_choice_count(poll)
    now = utcnow()
    if status == PollStatus.REVEALED and auto_seconds is None:
        poll.status, poll.reveal_step = PollStatus.REVEALED, total
        db.session.commit()
        live.notify(poll.slug)
        return poll
    if poll.reveal_started_at is None:
        poll.reveal_started_at = now
    if poll.reveal_auto_seconds:
        poll.reveal_step = min(total, schedule.auto_step(poll, now))
    if auto_seconds is not None:
        if auto_seconds < 1:
            raise InvalidRequest("Auto-play needs at least one second between places.")
        poll.reveal_auto_seconds = auto_seconds
        poll.reveal_started_at = now
        poll.reveal_step = max(poll.reveal_step, 1)
    elif step:
        poll.reveal_auto_seconds = None
        poll.reveal_step = min(total, poll.reveal_step + 1)
    else:
        poll.reveal_auto_seconds = None
        poll.reveal_step = total
    poll.status = PollStatus.REVEALED if poll.reveal_step >= total else PollStatus.REVEALING
    audit.record(
        actor,
        "poll.reveal",
        poll.slug,
        step=poll.reveal_step,
        auto_seconds=poll.reveal_auto_seconds,
        tie_seed=poll.tie_seed,
    )
    db.session.commit()
    live.notify(poll.slug)
    return poll


def turnout(poll: Poll) -> int:
    """How many ballots the poll holds."""
    return int(
        db.session.execute(
            select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id)
        ).scalar_one()
    )


def counts(poll: Poll) -> dict[str, int]:
    """Votes per active project slug: one GROUP BY, zero for projects nobody chose."""
    active = {c.project_id: c.project.slug for c in poll.choices if not c.withdrawn}
    result = dict.fromkeys(active.values(), 0)
    rows = db.session.execute(
        select(BallotChoice.project_id, func.count())
        .where(BallotChoice.poll_id == poll.id)
        .group_by(BallotChoice.project_id)
    )
    for project_id, votes in rows:
        if project_id in active:
            result[active[project_id]] = int(votes)
    return result


def counted(poll: Poll) -> tuple[int, dict[str, int]]:
    """Turnout and votes per project from one statement, so both describe the same moment.

    (Two statements under READ COMMITTED could straddle a ballot's commit.) A ballot and its
    choices commit together, so a poll with no choice rows has no ballots.
    """
    active = {c.project_id: c.project.slug for c in poll.choices if not c.withdrawn}
    result = dict.fromkeys(active.values(), 0)
    ballots_now = select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id).scalar_subquery()
    rows = db.session.execute(
        select(BallotChoice.project_id, func.count(), ballots_now)
        .where(BallotChoice.poll_id == poll.id)
        .group_by(BallotChoice.project_id)
    ).all()
    for project_id, votes, _ in rows:
        if project_id in active:
            result[active[project_id]] = int(votes)
    return (int(rows[0][2]) if rows else 0), result


def placings(poll: Poll) -> list[tally.Placing]:
    """The full ranking, winner first, ties ordered by the poll's seed."""
    return tally.rank(counts(poll), poll.tie_seed)


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


def _standing(poll: Poll, now: datetime) -> Standing:
    ballots_cast, votes = counted(poll)
    return Standing(
        now=now,
        status=effective_status(poll, now),
        turnout=ballots_cast,
        placings=tally.rank(votes, poll.tie_seed),
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
        "opens_at": _iso(poll.opens_at),
        "closes_at": _iso(poll.closes_at),
        "tie_seed_hash": poll.tie_seed_hash if status != PollStatus.DRAFT else None,
    }
    placed = None
    if counts_visible(poll, status, organizer=organizer):
        placed = standing.placings
    elif status == PollStatus.REVEALING and poll.results_mode != ResultsMode.LIVE:
        step = min(len(titles), schedule.auto_step(poll, now))
        placed = tally.revealed(standing.placings, step)
    if status in (PollStatus.REVEALING, PollStatus.REVEALED):
        doc["reveal_step"] = (
            min(len(titles), schedule.auto_step(poll, now))
            if status == PollStatus.REVEALING
            else len(titles)
        )
    if status == PollStatus.REVEALED:
        doc["tie_seed"] = poll.tie_seed
    if placed is not None:
        doc["results"] = [
            {
                "project": p.project,
                "title": titles[p.project].title,
                "team": titles[p.project].team,
                "votes": p.votes,
                "rank": p.rank,
            }
            for p in placed
        ]
    return doc


def shown_places(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The places a results page or overlay shows now: during the staged reveal only those
    revealed so far (last place first), even where the results mode would show them all."""
    rows: list[dict[str, Any]] = doc.get("results") or []
    if doc["status"] == PollStatus.REVEALING:
        first_shown = doc["places"] - doc.get("reveal_step", 0)
        rows = [row for row in rows if row["rank"] > first_shown]
    return rows


def refresh_hint(poll: Poll, status: PollStatus) -> int | None:
    """Seconds after which a page without JavaScript should look again (None: it is final)."""
    if status == PollStatus.REVEALED:
        return None
    if status == PollStatus.REVEALING:
        return min(5, poll.reveal_auto_seconds or 5)
    return {PollStatus.DRAFT: 30, PollStatus.OPEN: 15, PollStatus.CLOSED: 10}.get(status, 15)


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
    )


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
        "opens_at": _iso(poll.opens_at),
        "closes_at": _iso(poll.closes_at),
        "tie_seed_hash": poll.tie_seed_hash if status != PollStatus.DRAFT else None,
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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def list_polls(statuses: Iterable[str] | None = None) -> list[Poll]:
    """Polls, newest first, optionally only those whose effective status is listed."""
    polls = list(db.session.execute(select(Poll).order_by(Poll.created_at.desc())).scalars())
    if statuses is None:
        return polls
    wanted = set(statuses)
    return [p for p in polls if effective_status(p) in wanted]


# -- editing a draft, withdrawing a project, the turnout curve (the organizer console) -------


def check_schedule(
    opens_at: datetime | None, closes_at: datetime | None, now: datetime | None = None
) -> None:
    """Refuse a schedule that is already in the past (a new or edited draft must not open by surprise)."""
    now = now or utcnow()
    if opens_at is not None and opens_at <= now:
        raise InvalidRequest(
            "The opening time has already passed: pick a later time, or leave it empty and "
            "open the poll by hand."
        )
    if closes_at is not None and closes_at <= now:
        raise InvalidRequest("The closing time has already passed: pick a later time.")


def _projects_for(spec: PollSpec) -> list[Project]:
    """The projects a poll covers: the named categories, the named slugs, or all."""
    stmt = select(Project).order_by(Project.title)
    if spec.categories:
        folded = {c.casefold() for c in spec.categories}
        chosen = [p for p in db.session.execute(stmt).scalars() if p.category.casefold() in folded]
    elif spec.projects:
        chosen = list(db.session.execute(stmt.where(Project.slug.in_(spec.projects))).scalars())
        missing = set(spec.projects) - {p.slug for p in chosen}
        if missing:
            raise InvalidRequest(f"Unknown projects: {', '.join(sorted(missing))}.")
    else:
        chosen = list(db.session.execute(stmt).scalars())
        if not chosen:
            raise InvalidRequest("There are no projects to vote on yet; import some first.")
    if not chosen:
        raise InvalidRequest("No project matches that choice; include at least one project.")
    return chosen


@atomic
def update_poll(slug: str, spec: PollSpec, *, actor: str) -> Poll:
    """Change a draft poll's settings, schedule and projects; a poll that has opened is fixed."""
    poll = lock_poll(slug, exclusive=True)
    status = effective_status(poll)
    if status != PollStatus.DRAFT:
        raise PollStateError(
            f"This poll is {status}; only a draft poll can be edited. "
            "Withdraw a project instead if one must leave the ballot."
        )
    try:
        projects = _projects_for(spec)
        max_choices = _validate(PollSpec(**{**spec.__dict__, "slug": poll.slug}), len(projects))
        check_schedule(spec.opens_at, spec.closes_at)
    except InvalidRequest:
        raise
    changes: dict[str, Any] = {}
    wanted_fields: dict[str, Any] = {
        "title": spec.title.strip(),
        "description": spec.description,
        "method": spec.method,
        "max_choices": max_choices,
        "eligibility": spec.eligibility,
        "results_mode": spec.results_mode,
        "allow_revote": spec.allow_revote,
        "opens_at": spec.opens_at,
        "closes_at": spec.closes_at,
    }
    for name, value in wanted_fields.items():
        if getattr(poll, name) != value:
            setattr(poll, name, value)
            changes[name] = _iso(value) if isinstance(value, datetime) else value
    wanted = {p.id: p for p in projects}
    before = sorted(c.project.slug for c in poll.choices if not c.withdrawn)
    for choice in list(poll.choices):
        if choice.project_id not in wanted:
            poll.choices.remove(choice)  # a draft has no ballots, so the row can go
        elif choice.withdrawn:
            choice.withdrawn = False
    present = {c.project_id for c in poll.choices}
    for project_id, project in wanted.items():
        if project_id not in present:
            poll.choices.append(PollChoice(project=project))
    after = sorted(p.slug for p in projects)
    if after != before:
        changes["projects"] = after
    audit.record(actor, "poll.edit", poll.slug, changes=changes)
    db.session.commit()
    return poll


@atomic
def withdraw_project(slug: str, project_slug: str, *, actor: str) -> Poll:
    """Take a project off the ballot: it is no longer offered and its votes no longer count."""
    poll = lock_poll(slug, exclusive=True)
    status = effective_status(poll)
    if status not in BEFORE_CLOSE:
        raise PollStateError(
            "This poll has closed and its tally is final; a project can no longer be withdrawn."
        )
    choice = next((c for c in poll.choices if c.project.slug == project_slug), None)
    if choice is None:
        raise NotFound(f"{project_slug!r} is not a project in this poll.")
    if choice.withdrawn:
        db.session.rollback()
        return poll
    if active_choice_count(poll) <= 1:
        raise InvalidRequest("This is the last project on the ballot; a poll needs at least one.")
    choice.withdrawn = True
    audit.record(actor, "poll.withdraw", poll.slug, project=project_slug, status=status)
    db.session.commit()
    return poll


def ballots_per_minute(poll: Poll) -> list[tuple[datetime, int]]:
    """Ballots cast in each minute (as stored), oldest first: one GROUP BY."""
    rows = db.session.execute(
        select(Ballot.cast_minute, func.count(Ballot.id))
        .where(Ballot.poll_id == poll.id)
        .group_by(Ballot.cast_minute)
        .order_by(Ballot.cast_minute)
    )
    return [(minute, int(n)) for minute, n in rows]
