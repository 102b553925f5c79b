"""Rehearsals: a copy of a poll to run the whole day on (open, vote, close, reveal), then reset.

A rehearsal has the real poll's projects and settings, its own slug (`<slug>-rehearsal`),
tokens, ballots and tie-break seed, and no schedule (it opens when the organizer says so).
The real poll is only read: its row, choices, tokens, ballots and audit entries stay as they
were. The audit log records the rehearsal's own life (create, its lifecycle, reset, delete)
under the rehearsal's slug, so the chain shows that one was made.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from voting import live
from voting.database import atomic, begin_write
from voting.domain import tally
from voting.domain.errors import InvalidRequest, NotFound
from voting.domain.statuses import PollStatus
from voting.extensions import db
from voting.models import (
    Ballot,
    BallotChoice,
    Poll,
    PollChoice,
    RosterEntry,
    SupersededReceipt,
    Token,
)
from voting.services import audit
from voting.services.polls import lock_poll

SUFFIX = "-rehearsal"


def rehearsal_slug(slug: str) -> str:
    """The slug of a poll's rehearsal copy (slugs are at most 80 characters)."""
    return slug[: 80 - len(SUFFIX)].rstrip("-") + SUFFIX


def _find(slug: str) -> Poll | None:
    return db.session.execute(select(Poll).where(Poll.slug == slug)).scalar_one_or_none()


@atomic
def create_rehearsal(slug: str, *, actor: str) -> Poll:
    """A draft rehearsal copy of the poll `slug`: same projects and settings, nothing else."""
    begin_write()
    real = _find(slug)
    if real is None:
        raise NotFound(f"There is no poll called {slug!r}.")
    if real.rehearsal_of is not None:
        raise InvalidRequest(f"{slug!r} is a rehearsal itself; rehearse {real.rehearsal_of!r}.")
    target = rehearsal_slug(slug)
    if _find(target) is not None:
        raise InvalidRequest(
            f"The rehearsal {target!r} exists already: reset it (--reset) or delete it (--delete)."
        )
    seed = tally.new_seed()
    copy = Poll(
        slug=target,
        title=real.title,
        description=real.description,
        method=real.method,
        max_choices=real.max_choices,
        eligibility=real.eligibility,
        results_mode=real.results_mode,
        allow_revote=real.allow_revote,
        tie_seed=seed,
        tie_seed_hash=tally.seed_hash(seed),
        status=PollStatus.DRAFT,
        reveal_step=0,
        overlay_key_version=1,
        rehearsal_of=real.slug,
    )
    copy.choices = [PollChoice(project_id=c.project_id) for c in real.choices if not c.withdrawn]
    db.session.add(copy)
    db.session.flush()
    audit.record(
        actor,
        "rehearsal.create",
        copy.slug,
        of=real.slug,
        projects=sorted(c.project.slug for c in real.choices if not c.withdrawn),
    )
    db.session.commit()
    return copy


def _locked_rehearsal(slug: str) -> Poll:
    poll = lock_poll(slug, exclusive=True)
    if poll.rehearsal_of is None:
        # The one refusal that matters most: a real poll is never reset or deleted.
        raise InvalidRequest(f"{slug!r} is a real poll, not a rehearsal: it cannot be reset.")
    return poll


def _clear(poll: Poll) -> int:
    """Delete the rehearsal's ballots, receipts, tokens and roster; how many ballots it had."""
    ballots = db.session.execute(
        select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id)
    ).scalar_one()
    for model in (BallotChoice, Ballot, SupersededReceipt, Token, RosterEntry):
        db.session.execute(delete(model).where(model.poll_id == poll.id))
    return int(ballots)


@atomic
def reset_rehearsal(slug: str, *, actor: str) -> Poll:
    """Back to a fresh draft: no tokens, no ballots, a new tie-break seed, overlay URLs revoked."""
    poll = _locked_rehearsal(slug)
    ballots = _clear(poll)
    seed = tally.new_seed()
    poll.status = PollStatus.DRAFT
    poll.opened_at = poll.closed_at = poll.reveal_started_at = None
    poll.reveal_step, poll.reveal_auto_seconds = 0, None
    poll.tie_seed, poll.tie_seed_hash = seed, tally.seed_hash(seed)
    poll.overlay_key_version += 1
    audit.record(actor, "rehearsal.reset", poll.slug, of=poll.rehearsal_of, ballots=ballots)
    db.session.commit()
    live.notify(poll.slug)
    return poll


@atomic
def delete_rehearsal(slug: str, *, actor: str) -> str:
    """Delete the rehearsal and all it holds (its audit entries stay); the real poll's slug."""
    poll = _locked_rehearsal(slug)
    ballots = _clear(poll)
    of = str(poll.rehearsal_of)
    db.session.delete(poll)
    audit.record(actor, "rehearsal.delete", slug, of=of, ballots=ballots)
    db.session.commit()
    live.notify(slug)
    return of
