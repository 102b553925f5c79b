"""Draft polls: the spec and its validation, creating and editing, withdrawing a project."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from voting import live
from voting.database import atomic, begin_write
from voting.domain import tally
from voting.domain.errors import InvalidRequest, NotFound, PollStateError
from voting.domain.statuses import BEFORE_CLOSE, Eligibility, Method, PollStatus, ResultsMode
from voting.domain.timestamps import iso
from voting.extensions import db
from voting.models import Poll, PollChoice, Project, utcnow
from voting.services import audit
from voting.services.polls.fingerprint import audit_detail
from voting.services.polls.lifecycle import active_choice_count, effective_status, lock_poll

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass
class PollSpec:
    """What an organizer asks for when creating or editing a poll."""

    slug: str
    title: str
    description: str = ""
    award: str = ""
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
    if len(spec.award.strip()) > 120:
        raise InvalidRequest("An award's name may be at most 120 characters.")
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
        award=spec.award.strip(),
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
        award=poll.award,
        method=poll.method,
        max_choices=poll.max_choices,
        eligibility=poll.eligibility,
        results_mode=poll.results_mode,
        allow_revote=poll.allow_revote,
        projects=[p.slug for p in projects],
    )
    db.session.commit()
    return poll


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
    projects = _projects_for(spec)
    max_choices = _validate(PollSpec(**{**spec.__dict__, "slug": poll.slug}), len(projects))
    check_schedule(spec.opens_at, spec.closes_at)
    changes: dict[str, Any] = {}
    wanted_fields: dict[str, Any] = {
        "title": spec.title.strip(),
        "award": spec.award.strip(),
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
            changes[name] = iso(value) if isinstance(value, datetime) else value
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
    # The definition lost a choice: an opened poll's entry carries its new fingerprint.
    audit.record(
        actor,
        "poll.withdraw",
        poll.slug,
        project=project_slug,
        status=status,
        **audit_detail(poll, status),
    )
    db.session.commit()
    live.notify(poll.slug)
    return poll
