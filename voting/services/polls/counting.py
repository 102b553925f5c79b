"""Counting a poll's ballots in the database: turnout, votes per project, ballots per minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from voting.extensions import db
from voting.models import Ballot, BallotChoice, Poll, utcnow


def turnout(poll: Poll) -> int:
    """How many ballots the poll holds."""
    return int(
        db.session.execute(
            select(func.count(Ballot.id)).where(Ballot.poll_id == poll.id)
        ).scalar_one()
    )


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


def ballots_per_minute(poll: Poll) -> list[tuple[datetime, int]]:
    """Ballots cast in each minute (as stored), oldest first: one GROUP BY."""
    rows = db.session.execute(
        select(Ballot.cast_minute, func.count(Ballot.id))
        .where(Ballot.poll_id == poll.id)
        .group_by(Ballot.cast_minute)
        .order_by(Ballot.cast_minute)
    )
    return [(minute, int(n)) for minute, n in rows]


def ballots_last_minute(now: datetime | None = None) -> int:
    """Ballots stored in the last whole minute, over every poll (the console's pulse)."""
    minute = (now or utcnow()).replace(second=0, microsecond=0) - timedelta(minutes=1)
    return int(
        db.session.execute(
            select(func.count(Ballot.id)).where(Ballot.cast_minute == minute)
        ).scalar_one()
    )
