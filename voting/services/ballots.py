"""Casting a ballot: the rules of a correct vote (DESIGN.md 1, 2, 3, 4 and 9)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, Integer, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from voting import live, metrics
from voting.database import atomic, begin_write
from voting.domain.ballot import check_choices, well_formed
from voting.domain.errors import AlreadyVoted, InvalidToken, NotFound, PollNotOpen
from voting.domain.receipts import RECEIPT_ALPHABET
from voting.domain.schedule import window_status
from voting.domain.statuses import PollStatus
from voting.domain.tokens import VoterToken, read_voter_token
from voting.extensions import db
from voting.models import (
    Ballot,
    BallotChoice,
    Poll,
    PollChoice,
    Project,
    SupersededReceipt,
    Token,
    utcnow,
)
from voting.services import ballot_statement
from voting.services.issuing import voter_signer
from voting.services.polls.lifecycle import with_poll_lock


def new_receipt() -> str:
    """A random receipt code like 7KQ2-M9XD-4TBR (60 bits, 5 per character)."""
    # One read of the system's randomness, not one (or two) per character.
    bits = secrets.randbits(60)
    raw = "".join(RECEIPT_ALPHABET[(bits >> shift) & 31] for shift in range(0, 60, 5))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class CastResult:
    receipt: str
    replaced: bool = False


def receipt_for(token_id: str) -> str | None:
    """The receipt of the ballot cast with this token id, if any."""
    return db.session.execute(
        select(Ballot.receipt).where(Ballot.token_id == token_id)
    ).scalar_one_or_none()


# The ballot path runs prebuilt Core statements on the session's connection: no ORM objects
# to build, flush or expire. One query reads the poll (taking its lock), the token and the
# chosen projects; then the ballot and its choices are inserted (one statement on
# PostgreSQL) and committed.
_polls, _tokens = Poll.__table__, Token.__table__
_ballots, _ballot_choices = Ballot.__table__, BallotChoice.__table__
_choices, _projects = PollChoice.__table__, Project.__table__
_POLL_TOKEN_CHOICES = (
    select(
        _polls.c.id,
        _polls.c.status,
        _polls.c.opens_at,
        _polls.c.closes_at,
        _polls.c.max_choices,
        _polls.c.allow_revote,
        _tokens.c.id.label("token_id"),
        _tokens.c.revoked_at,
        _projects.c.slug.label("choice_slug"),
        _choices.c.project_id.label("choice_id"),
    )
    .select_from(
        _polls.outerjoin(
            _tokens,
            (_tokens.c.id == bindparam("token_id")) & (_tokens.c.poll_id == _polls.c.id),
        ).outerjoin(
            _choices.join(_projects, _projects.c.id == _choices.c.project_id),
            (_choices.c.poll_id == _polls.c.id)
            & _choices.c.withdrawn.is_(False)
            & _projects.c.slug.in_(bindparam("slugs", expanding=True)),
        )
    )
    .where(_polls.c.slug == bindparam("slug"))
)
_MAX_LOOKUP = 100


def _active_choices(conn: Connection, poll_id: int, slugs: list[str]) -> dict[str, int]:
    """Project ids by slug, for those of the slugs that are active choices of the poll."""
    stmt = (
        select(_projects.c.slug, _choices.c.project_id)
        .select_from(_choices.join(_projects, _projects.c.id == _choices.c.project_id))
        .where(
            _choices.c.poll_id == poll_id,
            _choices.c.withdrawn.is_(False),
            _projects.c.slug.in_(slugs),
        )
    )
    return {slug: project_id for slug, project_id in conn.execute(stmt)}


_INSERT_BALLOT = insert(_ballots).returning(_ballots.c.id)
_INSERT_CHOICE = insert(_ballot_choices)
# PostgreSQL inserts the ballot and its choices in one statement (one round trip fewer).
_new_ballot = (
    insert(_ballots)
    .values(
        poll_id=bindparam("poll_id"),
        token_id=bindparam("token_id"),
        receipt=bindparam("receipt"),
        cast_minute=bindparam("cast_minute", type_=_ballots.c.cast_minute.type),
    )
    .returning(_ballots.c.id, _ballots.c.poll_id)
    .cte("new_ballot")
)
_INSERT_BALLOT_AND_CHOICES = insert(_ballot_choices).from_select(
    ["ballot_id", "poll_id", "project_id"],
    select(
        _new_ballot.c.id,
        _new_ballot.c.poll_id,
        func.unnest(bindparam("project_ids", type_=postgresql.ARRAY(Integer))),
    ).select_from(_new_ballot),
)
# A revote locks the earlier ballot and reads its receipt and choices in one statement, so
# keeping that receipt for the board (rule 4: no token, no ballot, no time) is one INSERT.
_LOCK_BALLOT = (
    select(_ballots.c.id, _ballots.c.receipt, _projects.c.slug)
    .select_from(
        _ballots.outerjoin(_ballot_choices, _ballot_choices.c.ballot_id == _ballots.c.id).outerjoin(
            _projects, _projects.c.id == _ballot_choices.c.project_id
        )
    )
    .where(_ballots.c.token_id == bindparam("token_id"))
    .with_for_update(of=_ballots)
)
_INSERT_SUPERSEDED = insert(SupersededReceipt.__table__)


_locked_statements: dict[str, Select[Any]] = {}


def _locked_read() -> Select[Any]:
    """_POLL_TOKEN_CHOICES with the poll's key-share lock, built once per database dialect."""
    dialect = db.session.get_bind().dialect.name
    stmt = _locked_statements.get(dialect)
    if stmt is None:
        stmt = _locked_statements[dialect] = with_poll_lock(_POLL_TOKEN_CHOICES, exclusive=False)
    return stmt


def _refuse_unless_valid(
    rows: Sequence[Any], slug: str, token: VoterToken, choices: object
) -> tuple[Any, dict[str, int]]:
    """The poll row and the chosen active choices, or the domain error that says why not.

    Both ballot paths read the same columns: the poll, the token, the chosen choices.
    """
    if not rows:
        raise NotFound(f"There is no poll called {slug!r}.")
    row = rows[0]
    if token.poll_id != row.id:
        raise InvalidToken("This voting link belongs to another poll.")
    status = window_status(PollStatus(row.status), row.opens_at, row.closes_at, utcnow())
    if status != PollStatus.OPEN:
        raise PollNotOpen(_not_open_message(status))
    if row.token_id is None:
        raise InvalidToken("This voting link was never issued for this poll.")
    if row.revoked_at is not None:
        raise InvalidToken(
            "This voting link was cancelled by the organizers. Ask them for a new one."
        )
    return row, {r.choice_slug: r.choice_id for r in rows if r.choice_id is not None}


def _fast_path(choices: object) -> TypeGuard[list[str]]:
    """A first ballot goes through ballot_statement: PostgreSQL, a plain list of distinct slugs."""
    return (
        db.engine.dialect.name == "postgresql"
        and well_formed(choices)
        and 0 < len(choices) <= _MAX_LOOKUP
        and len(set(choices)) == len(choices)
    )


@metrics.counting_ballots
@atomic
def cast_ballot(
    slug: str,
    raw_token: object,
    choices: Sequence[str] | object,
    *,
    on_repeat: Callable[[], None] | None = None,
) -> CastResult:
    """Record one ballot for one token id, or raise the domain error that says why not.

    `on_repeat` is called when the token already has a ballot and the poll allows a
    revote, before anything is written (the web layer counts the attempt there).
    """
    if not isinstance(raw_token, str):
        raise InvalidToken()
    token = read_voter_token(voter_signer(), raw_token)
    if _fast_path(choices):
        receipt = new_receipt()
        try:
            outcome = ballot_statement.insert_first_ballot(
                slug=slug,
                token_id=token.token_id,
                token_poll=token.poll_id,
                excluded=token.excluded,
                slugs=choices,
                receipt=receipt,
                now=utcnow(),
            )
        except UniqueViolation:
            outcome = None  # a receipt collision (60 random bits): the path below draws again
        if outcome is not None and outcome.ballot_id is not None:
            live.notify(slug)
            return CastResult(receipt=receipt)
        if outcome is not None:
            row, active = _refuse_unless_valid(outcome.rows, slug, token, choices)
            check_choices(
                choices, max_choices=row.max_choices, active=active, excluded=token.excluded
            )
            if not row.allow_revote:
                raise AlreadyVoted(receipt=receipt_for(token.token_id))
        # A revote (or a collision) takes the path below, under the same locks.
    return _cast_in_session(slug, raw_token, token, choices, on_repeat)


def _cast_in_session(
    slug: str,
    raw_token: str,
    token: VoterToken,
    choices: Sequence[str] | object,
    on_repeat: Callable[[], None] | None,
) -> CastResult:
    """The ballot in the session's transaction: SQLite, revotes, and unusual choice lists."""
    begin_write()
    # From here on we hold the poll's key-share lock (PostgreSQL) or the write lock (SQLite),
    # so the status read below stays true until this transaction ends (polls.lifecycle doc).
    conn = db.session.connection()
    # The chosen slugs are looked up in the same query; a list too long for any ballot is
    # refused by the max-choices check below, not sent to the database.
    wanted = choices if well_formed(choices) and len(choices) <= _MAX_LOOKUP else []
    rows = conn.execute(
        _locked_read(), {"slug": slug, "token_id": token.token_id, "slugs": wanted}
    ).all()
    row, active = _refuse_unless_valid(rows, slug, token, choices)
    if well_formed(choices) and row.max_choices >= len(choices) > len(wanted):
        # A poll that allows more than _MAX_LOOKUP choices: look the rest up now.
        active = _active_choices(conn, row.id, choices)
    project_ids = check_choices(
        choices, max_choices=row.max_choices, active=active, excluded=token.excluded
    )

    receipt = new_receipt()
    minute = utcnow().replace(second=0, microsecond=0)
    try:
        if row.allow_revote:
            earlier = conn.execute(_LOCK_BALLOT, {"token_id": token.token_id}).all()
            if earlier:
                if on_repeat is not None:
                    on_repeat()
                existing = earlier[0].id
                conn.execute(
                    _INSERT_SUPERSEDED,
                    {
                        "receipt": earlier[0].receipt,
                        "poll_id": row.id,
                        "choices": ";".join(sorted(r.slug for r in earlier if r.slug)),
                    },
                )
                conn.execute(delete(_ballot_choices).where(_ballot_choices.c.ballot_id == existing))
                conn.execute(
                    update(_ballots)
                    .where(_ballots.c.id == existing)
                    .values(receipt=receipt, cast_minute=minute)
                )
                _insert_choices(conn, existing, row.id, project_ids)
                db.session.commit()
                live.notify(slug)
                return CastResult(receipt=receipt, replaced=True)
        ballot = {
            "poll_id": row.id,
            "token_id": token.token_id,
            "receipt": receipt,
            "cast_minute": minute,
        }
        if conn.dialect.name == "postgresql":
            conn.execute(_INSERT_BALLOT_AND_CHOICES, {**ballot, "project_ids": project_ids})
        else:
            ballot_id = conn.execute(_INSERT_BALLOT, ballot).scalar_one()
            _insert_choices(conn, ballot_id, row.id, project_ids)
        db.session.commit()
    except IntegrityError:
        # The unique constraint on token_id decided a race (or a second attempt).
        db.session.rollback()
        if row.allow_revote:
            return _cast_in_session(slug, raw_token, token, choices, on_repeat)
        raise AlreadyVoted(receipt=receipt_for(token.token_id)) from None
    # After the commit: the tally cache and the streams follow (never fails the ballot).
    live.notify(slug)
    return CastResult(receipt=receipt)


def _insert_choices(conn: Connection, ballot_id: int, poll_id: int, project_ids: list[int]) -> None:
    conn.execute(
        _INSERT_CHOICE,
        [{"ballot_id": ballot_id, "poll_id": poll_id, "project_id": p} for p in project_ids],
    )


def _not_open_message(status: PollStatus) -> str:
    if status == PollStatus.DRAFT:
        return "Voting has not opened yet for this poll."
    return "Voting has closed for this poll; ballots are no longer accepted."
