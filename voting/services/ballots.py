"""Casting a ballot: the rules of a correct vote (DESIGN.md 1, 2, 3, 4 and 9)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from voting import live
from voting.errors import AlreadyVoted, InvalidRequest, InvalidToken, PollNotOpen
from voting.extensions import db
from voting.models import Ballot, BallotChoice, Poll, Token, utcnow
from voting.services.issuing import voter_signer
from voting.services.polls import effective_status, lock_poll
from voting.tokens import VoterToken, read_voter_token

# Crockford's base32 without look-alikes: easy to read aloud and type.
_RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_receipt() -> str:
    """A random receipt code like 7KQ2-M9XD-4TBR (60 bits)."""
    raw = "".join(secrets.choice(_RECEIPT_ALPHABET) for _ in range(12))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class CastResult:
    receipt: str
    replaced: bool = False


def read_token_for(poll: Poll, raw: object) -> VoterToken:
    """Check a signed token against the poll without touching the database."""
    if not isinstance(raw, str):
        raise InvalidToken()
    token = read_voter_token(voter_signer(), raw)
    if token.poll_id != poll.id:
        raise InvalidToken("This voting link belongs to another poll.")
    return token


def _check_choices(poll: Poll, token: VoterToken, choices: object) -> list[int]:
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise InvalidRequest('"choices" must be a list of project slugs.')
    if not choices:
        raise InvalidRequest("Choose at least one project.")
    if len(set(choices)) != len(choices):
        raise InvalidRequest("Each project can be chosen only once.")
    if len(choices) > poll.max_choices:
        noun = "project" if poll.max_choices == 1 else "projects"
        raise InvalidRequest(f"This poll allows at most {poll.max_choices} {noun} per ballot.")
    active = {c.project.slug: c.project_id for c in poll.choices if not c.withdrawn}
    ids: list[int] = []
    for slug in choices:
        if slug not in active:
            raise InvalidRequest(f"{slug[:80]!r} is not a project in this poll.")
        if active[slug] in token.excluded:
            raise InvalidRequest(
                f"You cannot vote for {slug!r}: it is your own team's project. Pick another one."
            )
        ids.append(active[slug])
    return ids


def receipt_for(token_id: str) -> str | None:
    """The receipt of the ballot cast with this token id, if any."""
    return db.session.execute(
        select(Ballot.receipt).where(Ballot.token_id == token_id)
    ).scalar_one_or_none()


def cast_ballot(slug: str, raw_token: object, choices: Sequence[str] | object) -> CastResult:
    """Record one ballot for one token id, or raise the domain error that says why not."""
    if not isinstance(raw_token, str):
        raise InvalidToken()
    token = read_voter_token(voter_signer(), raw_token)
    # From here on we hold the poll's key-share lock (PostgreSQL) or the write lock (SQLite).
    poll = lock_poll(slug, exclusive=False)
    if token.poll_id != poll.id:
        db.session.rollback()
        raise InvalidToken("This voting link belongs to another poll.")
    if effective_status(poll) != "open":
        db.session.rollback()
        raise PollNotOpen(_not_open_message(poll))
    issued = db.session.execute(
        select(Token.revoked_at).where(Token.id == token.token_id, Token.poll_id == poll.id)
    ).first()
    if issued is None:
        db.session.rollback()
        raise InvalidToken("This voting link was never issued for this poll.")
    if issued.revoked_at is not None:
        db.session.rollback()
        raise InvalidToken(
            "This voting link was cancelled by the organizers. Ask them for a new one."
        )
    project_ids = _check_choices(poll, token, choices)

    receipt = new_receipt()
    minute = utcnow().replace(second=0, microsecond=0)
    if poll.allow_revote:
        existing = db.session.execute(
            select(Ballot).where(Ballot.token_id == token.token_id).with_for_update()
        ).scalar_one_or_none()
        if existing is not None:
            db.session.execute(delete(BallotChoice).where(BallotChoice.ballot_id == existing.id))
            existing.receipt = receipt
            existing.cast_minute = minute
            db.session.add_all(
                BallotChoice(ballot_id=existing.id, poll_id=poll.id, project_id=p)
                for p in project_ids
            )
            db.session.commit()
            live.notify(slug)
            return CastResult(receipt=receipt, replaced=True)

    ballot = Ballot(poll_id=poll.id, token_id=token.token_id, receipt=receipt, cast_minute=minute)
    ballot.choices = [BallotChoice(poll_id=poll.id, project_id=p) for p in project_ids]
    db.session.add(ballot)
    try:
        db.session.commit()
    except IntegrityError:
        # The unique constraint on token_id decided a race (or a second attempt).
        db.session.rollback()
        if poll.allow_revote:
            return cast_ballot(slug, raw_token, choices)
        raise AlreadyVoted(receipt=receipt_for(token.token_id)) from None
    # After the commit: the tally cache and the streams follow (never fails the ballot).
    live.notify(slug)
    return CastResult(receipt=receipt)


def _not_open_message(poll: Poll) -> str:
    status = effective_status(poll)
    if status == "draft":
        return "Voting has not opened yet for this poll."
    return "Voting has closed for this poll; ballots are no longer accepted."
