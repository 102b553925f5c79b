"""Polls: finding and locking them, and their lifecycle (open, close, reveal, the schedule).

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

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select

from voting import live
from voting.database import atomic, begin_write
from voting.domain import schedule
from voting.domain.errors import InvalidRequest, NotFound, PollStateError
from voting.domain.statuses import BEFORE_CLOSE, PollStatus
from voting.domain.timestamps import iso
from voting.extensions import db
from voting.models import Poll, utcnow
from voting.services import audit
from voting.services.polls.counting import turnout
from voting.services.polls.fingerprint import fingerprint_of

SelectT = TypeVar("SelectT", bound=Select[Any])

# The actor named in the audit log when a poll opens or closes at its scheduled time.
SCHEDULE_ACTOR = "schedule"


def effective_status(
    poll: Poll, now: datetime | None = None, *, places: int | None = None
) -> PollStatus:
    """The status that applies now: the stored one, moved on by the schedule and the clock.

    `places` is the count of active choices when the caller has read it already."""
    if places is None:
        places = active_choice_count(poll)
    return schedule.effective_status(poll, places, now or utcnow())


def active_choice_count(poll: Poll) -> int:
    """How many projects are still on the ballot (not withdrawn)."""
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


def list_polls(statuses: Iterable[str] | None = None) -> list[Poll]:
    """Polls, newest first, optionally only those whose effective status is listed."""
    polls = list(db.session.execute(select(Poll).order_by(Poll.created_at.desc())).scalars())
    if statuses is None:
        return polls
    wanted = set(statuses)
    return [p for p in polls if effective_status(p) in wanted]


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
    # The fingerprint is published here, once the definition it covers is fixed.
    audit.record(
        actor,
        "poll.open",
        poll.slug,
        tie_seed_hash=poll.tie_seed_hash,
        fingerprint=fingerprint_of(poll, PollStatus.OPEN),
    )
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
            at=iso(poll.opens_at),
            tie_seed_hash=poll.tie_seed_hash,
            fingerprint=fingerprint_of(poll, PollStatus.OPEN),
        )
    if poll.status == PollStatus.OPEN and status == PollStatus.CLOSED:
        poll.status = PollStatus.CLOSED
        poll.opened_at = poll.opened_at or poll.opens_at
        poll.closed_at = poll.closes_at
        audit.record(
            SCHEDULE_ACTOR, "poll.close", poll.slug, at=iso(poll.closes_at), turnout=turnout(poll)
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
