"""Reading a voter's token without spending it: is this link still good, and has it voted?"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect

from voting.database import autocommitted
from voting.domain.errors import InvalidToken
from voting.domain.tokens import VoterToken, read_voter_token
from voting.extensions import db
from voting.models import Ballot, Poll, Token
from voting.services.issuing import voter_signer

# A token's state: issued for this poll (a row), revoked or not, and its receipt if it voted.
_STATE = (
    select(Token.revoked_at, Ballot.receipt)
    .outerjoin(Ballot, Ballot.token_id == Token.id)
    .where(Token.id == bindparam("token_id"), Token.poll_id == bindparam("poll_id"))
)


@functools.cache
def _state_sql(dialect: Dialect) -> str:
    return str(_STATE.compile(dialect=dialect))


def _state(token_id: str, poll_id: int) -> Any:
    """The token's row, if issued for the poll: (revoked_at, receipt).

    Every ballot page with a voter cookie reads it. On PostgreSQL, when the request has not
    begun a transaction, it is one autocommitted round trip instead of three."""
    params = {"token_id": token_id, "poll_id": poll_id}
    dialect = db.engine.dialect
    if dialect.name == "postgresql" and not db.session().in_transaction():
        rows = autocommitted(_state_sql(dialect), params)
        return rows[0] if rows else None
    return db.session.execute(_STATE, params).first()


class UnusableLink(InvalidToken):
    """An InvalidToken that says which way the link fails, so a page can explain it."""

    def __init__(self, message: str | None = None, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason  # unreadable | other-poll | unknown | revoked


@dataclass(frozen=True)
class Voter:
    poll: Poll
    token: VoterToken
    receipt: str | None


def check_token(raw: str, poll: Poll | None = None) -> Voter:
    """A token that was issued for its poll and not revoked, with its receipt if it voted.

    Only reads: link previews and scanners may call this as often as they like (rule 3).
    Raises UnusableLink (an InvalidToken) for anything else, with the reason.
    """
    try:
        token = read_voter_token(voter_signer(), raw)
    except InvalidToken as exc:
        raise UnusableLink(exc.message, reason="unreadable") from None
    if poll is None:
        poll = db.session.get(Poll, token.poll_id)
    if poll is None or token.poll_id != poll.id:
        raise UnusableLink("This voting link belongs to another poll.", reason="other-poll")
    row = _state(token.token_id, poll.id)
    if row is None:
        raise UnusableLink("This voting link was never issued for this poll.", reason="unknown")
    if row.revoked_at is not None:
        raise UnusableLink(
            "This voting link was cancelled by the organizers. Ask them for a new one.",
            reason="revoked",
        )
    return Voter(poll=poll, token=token, receipt=row.receipt)
