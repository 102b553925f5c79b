"""What every visitor's ballot page reads alike, held by this process for a moment.

When the stage says "vote now", a hall opens the ballot page at once, and every view
would read the same rows: the projects on the ballot and the poll's published fingerprint.
This process keeps what it read for PAGE_HOLD_SECONDS. It forgets everything at once when
it commits an organizer-side change here: a flush that adds, changes or deletes a poll,
a choice, a project, a team member, a token or an audit entry (every organizer action
writes one). A change committed by another process (another worker, the CLI) shows
within PAGE_HOLD_SECONDS.

Only what is the same for every visitor is held: the poll's row (detached, for reading its
columns), its cards and its fingerprint. The voter's own token and receipt are read per
request, and casting checks everything again in its transaction (voting.services.ballots),
so a page a moment old never lets a ballot through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from itertools import chain
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from voting.domain.statuses import PollStatus
from voting.extensions import db
from voting.models import AuditEvent, Poll, PollChoice, Project, TeamMember, Token
from voting.services.polls.fingerprint import published_fingerprint
from voting.services.polls.lifecycle import get_poll
from voting.services.projects import BallotEntry, on_ballot

T = TypeVar("T")

_HELD_FROM = (Poll, PollChoice, Project, TeamMember, Token, AuditEvent)
_STALE = "voting.held.stale"
_MAX_ENTRIES = 10_000

_lock = threading.Lock()
_generation = 0  # counts this process's commits of organizer-side changes
_held: dict[tuple[int, Hashable], tuple[float, int, Any]] = {}


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    # Still the pre-flush lists here: what this flush wrote.
    if any(
        isinstance(obj, _HELD_FROM) for obj in chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_STALE] = True


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    global _generation
    if session.info.pop(_STALE, False):
        with _lock:
            _generation += 1
            _held.clear()


@event.listens_for(Session, "after_rollback")
def _nothing_was_written(session: Session) -> None:
    session.info.pop(_STALE, None)


def hold(key: Hashable, read: Callable[[], T]) -> T:
    """What read() returns, kept under `key` for this app for PAGE_HOLD_SECONDS."""
    seconds = float(current_app.config["PAGE_HOLD_SECONDS"])
    if seconds <= 0:
        return read()
    full_key = (id(current_app._get_current_object()), key)  # type: ignore[attr-defined]
    now = time.monotonic()
    with _lock:
        found = _held.get(full_key)
        generation = _generation  # before reading: a commit meanwhile voids what we read
    if found is not None and found[1] == generation and now - found[0] < seconds:
        return found[2]
    value = read()
    if found is not None and value == found[2]:
        # Unchanged: keep the object already handed out, so what is cached by it (each
        # card's markup, web.public.gallery) is found by identity, not compared field by field.
        value = found[2]
    with _lock:
        if generation == _generation:
            if len(_held) >= _MAX_ENTRIES:
                _held.clear()
            _held[full_key] = (now, generation, value)
    return value


def poll(slug: str) -> Poll:
    """The poll (services.polls.get_poll), held, and detached from every session.

    Read its columns only: a relationship cannot load on it. Shared by this process's
    requests; never change it."""

    def read() -> Poll:
        found = get_poll(slug)
        db.session.expunge(found)
        return found

    return hold(("poll", slug), read)


def ballot_entries(poll: Poll) -> tuple[BallotEntry, ...]:
    """The projects on the poll's ballot (services.projects.on_ballot), held: the same
    object while they are unchanged (web.public.gallery prepares its cards once per object)."""
    return hold(("entries", poll.id), lambda: tuple(on_ballot(poll.id)))


def fingerprint(poll: Poll, status: PollStatus) -> str | None:
    """The poll's published fingerprint at this status (polls.published_fingerprint), held."""
    # Computing one may read the poll's choices: from a poll of this session's.
    return hold(
        ("fingerprint", poll.id, status),
        lambda: published_fingerprint(get_poll(poll.slug), status),
    )
