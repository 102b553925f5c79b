"""The clock's part in a poll: scheduled opening and closing, and the auto-played reveal.

The stored status is what an organizer (or the first reader after a scheduled moment)
wrote down; the effective status is that, moved on by the schedule and the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from voting.domain.statuses import PollStatus


class Scheduled(Protocol):
    """What the schedule reads of a poll."""

    @property
    def status(self) -> PollStatus: ...
    @property
    def opens_at(self) -> datetime | None: ...
    @property
    def closes_at(self) -> datetime | None: ...
    @property
    def reveal_step(self) -> int: ...
    @property
    def reveal_auto_seconds(self) -> int | None: ...
    @property
    def reveal_started_at(self) -> datetime | None: ...


def window_status(
    status: PollStatus, opens_at: datetime | None, closes_at: datetime | None, now: datetime
) -> PollStatus:
    """The stored status moved on by the schedule: all that decides whether a ballot counts."""
    if status == PollStatus.DRAFT and opens_at is not None and now >= opens_at:
        status = PollStatus.OPEN
    if status == PollStatus.OPEN and closes_at is not None and now >= closes_at:
        status = PollStatus.CLOSED
    return status


def auto_step(poll: Scheduled, now: datetime) -> int:
    """The reveal step that auto-play has reached by now (one place per interval)."""
    if not poll.reveal_auto_seconds or poll.reveal_started_at is None:
        return poll.reveal_step
    elapsed = (now - poll.reveal_started_at).total_seconds()
    return max(poll.reveal_step, int(elapsed // poll.reveal_auto_seconds) + 1)


def effective_status(poll: Scheduled, places: int, now: datetime) -> PollStatus:
    """The status that applies now, for a poll with `places` active choices."""
    status = window_status(poll.status, poll.opens_at, poll.closes_at, now)
    auto_done = poll.reveal_auto_seconds and auto_step(poll, now) >= places
    if status == PollStatus.REVEALING and auto_done:
        status = PollStatus.REVEALED
    return status


def next_change_at(poll: Scheduled, places: int, now: datetime) -> datetime | None:
    """The next moment the clock alone changes what the poll shows, if there is one."""
    status = effective_status(poll, places, now)
    if status == PollStatus.DRAFT:
        return poll.opens_at
    if status == PollStatus.OPEN:
        return poll.closes_at
    if status == PollStatus.REVEALING and poll.reveal_auto_seconds and poll.reveal_started_at:
        reached = auto_step(poll, now)
        return poll.reveal_started_at + timedelta(seconds=reached * poll.reveal_auto_seconds)
    return None
